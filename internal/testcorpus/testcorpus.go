// Package testcorpus is native JSON event messages for tests, fuzz seeds and
// benchmarks: the synthetic generator's (internal/synth) and the fixtures the
// real Open edX producers made (testdata/events/json, see testdata/gen).
package testcorpus

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/synth"
)

// NativeJSON returns the values of a synthetic history (its catalog and
// 2,000 events) followed by those of every JSON fixture.
func NativeJSON() ([][]byte, error) {
	var out [][]byte
	g := synth.New(3, 200, 20, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, m := range append(g.Catalog(), g.History(2000)...) {
		out = append(out, m.Value)
	}
	fixtures, err := JSONFixtures()
	return append(out, fixtures...), err
}

// JSONFixtures returns the message values of testdata/events/json.
func JSONFixtures() ([][]byte, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("testcorpus: cannot locate the repository")
	}
	dir := filepath.Join(filepath.Dir(self), "..", "..", "testdata", "events", "json")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("testcorpus: no fixtures in %s", dir)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var fx struct {
			ValueB64 *string `json:"value_b64"`
		}
		if err := json.Unmarshal(b, &fx); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if fx.ValueB64 == nil {
			continue // a fixture without a value: a tombstone
		}
		v, err := base64.StdEncoding.DecodeString(*fx.ValueB64)
		if err != nil {
			return nil, fmt.Errorf("%s: value_b64: %w", f, err)
		}
		out = append(out, v)
	}
	return out, nil
}
