package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// TestSorterOrders: whatever the run size (all in memory, a run per record,
// anything between, runs large enough to be sorted in two halves), iterate
// returns every record added, keys in order, equal keys in the order they
// were added.
func TestSorterOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, limit := range []int{1 << 30, 1, 37, 500, 300_000} {
		s := newSorter(filepath.Join(t.TempDir(), FileName), limit)
		n := 2000
		switch limit {
		case 1:
			n = 300 // a file each: stay far below any descriptor limit
		case 1 << 30, 300_000:
			n = 100_000 // runs of more than 16k records, sorted in halves
		}
		var want []string
		for i := range n {
			k := randomSortKey(rng, i)
			v := fmt.Appendf(nil, "v%d", i)
			if err := s.add(k, v); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(k)+"\xff"+string(v))
		}
		slices.SortStableFunc(want, func(a, b string) int {
			return bytes.Compare([]byte(a[:bytes.LastIndexByte([]byte(a), 0xff)]), []byte(b[:bytes.LastIndexByte([]byte(b), 0xff)]))
		})
		it, err := s.iterate()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			k, v, ok, err := it.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, string(k)+"\xff"+string(v))
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d records back of %d", limit, len(got), len(want))
		}
		for i := range got { // want is sorted stably: equal keys in the order added
			if got[i] != want[i] {
				t.Fatalf("limit %d: record %d is %q, want %q", limit, i, got[i], want[i])
			}
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("limit %d: records differ from those added", limit)
		}
		if limit == 1 && s.runCount() != n { // each record a run of its own
			t.Fatalf("limit 1: %d runs, want %d", s.runCount(), n)
		}
		s.close()
	}
}

// randomSortKey is a key of one of three shapes, in turns: short keys of
// few byte values (empty keys and NULs included: zero-padded prefixes tie
// with longer keys), 8-byte keys of any byte value in every position, and
// the same with a byte more (ties of prefix between both), few enough
// values of each that equal keys are many.
func randomSortKey(rng *rand.Rand, i int) []byte {
	switch i % 3 {
	case 0:
		k := make([]byte, rng.IntN(12))
		for j := range k {
			k[j] = byte(rng.IntN(4))
		}
		return k
	default:
		k := binary.BigEndian.AppendUint64(nil, uint64(rng.IntN(256))<<56|uint64(rng.IntN(2))<<32|uint64(rng.IntN(3)))
		if i%3 == 2 {
			k = append(k, byte(rng.IntN(3)))
		}
		return k
	}
}
