package consumer_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for the decoder's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRegistryOutage: while the registry fails, messages decode with the
// built-in schemas, the failure is logged and counted, and the registry is
// asked again only after RegistryRetryAfter.
func TestRegistryOutage(t *testing.T) {
	fixtures := loadFixtures(t)
	reg := MustRegistry(t, fixtureSchemas(t, fixtures))
	reg.down.Store(true)
	clock := &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	metrics := prometheus.NewRegistry()
	var logs syncBuffer
	dec := mustAvroDecoder(t, consumer.AvroOptions{
		RegistryURL: reg.URL, RegistryRetryAfter: time.Minute, Now: clock.Now,
		Registerer: metrics, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	decodeAll := func() {
		t.Helper()
		for _, f := range fixtures {
			if f.Format != "eventbus" {
				continue
			}
			got, err := dec.Decode(f.message(t))
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			checkDecoded(t, f, got)
		}
	}

	decodeAll()
	if n := reg.requests.Load(); n != 1 {
		t.Fatalf("%d requests to a failing registry, want 1 until the retry time", n)
	}
	if !strings.Contains(logs.String(), "schema registry lookup failed") {
		t.Fatalf("no warning logged: %q", logs.String())
	}
	fallbacks := counterValue(t, metrics, "enrollstatus_avro_builtin_fallback_total")
	if fallbacks == 0 {
		t.Fatal("fallbacks not counted")
	}

	clock.Add(59 * time.Second)
	decodeAll()
	if n := reg.requests.Load(); n != 1 {
		t.Fatalf("%d requests before the retry time", n)
	}

	reg.down.Store(false)
	clock.Add(2 * time.Second)
	decodeAll()
	before := reg.requests.Load()
	if before < 2 {
		t.Fatalf("registry not asked again after the retry time (%d requests)", before)
	}
	decodeAll()
	if n := reg.requests.Load(); n != before {
		t.Fatalf("%d more requests once every schema is cached", n-before)
	}
}

// counterValue sums the series of a registered counter.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRegistryHangs: a registry that accepts connections and never answers
// costs one timeout, not one per message, and never blocks a partition.
func TestRegistryHangs(t *testing.T) {
	fixtures := loadFixtures(t)
	release := make(chan struct{})
	var requests sync.WaitGroup
	var count int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		requests.Add(1)
		defer requests.Done()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	dec := mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: srv.URL, RegistryTimeout: 50 * time.Millisecond})

	f := fixtureNamed(t, fixtures, "enrollment_created_evolved_minor1")
	var wg sync.WaitGroup
	for range 8 { // partitions waiting for the same lookup share it
		wg.Go(func() {
			got, err := dec.Decode(f.message(t))
			if err != nil {
				t.Error(err)
				return
			}
			checkDecoded(t, f, got)
		})
	}
	wg.Wait()
	for range 100 {
		if _, err := dec.Decode(f.message(t)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 1 {
		t.Fatalf("%d requests to a hanging registry, want 1", count)
	}
}

// TestRegistryUnknownID: an id the registry does not know falls back to the
// built-in schema, and is not asked for again before the retry time.
func TestRegistryUnknownID(t *testing.T) {
	fixtures := loadFixtures(t)
	schemas := fixtureSchemas(t, fixtures)
	delete(schemas, 6)
	reg := MustRegistry(t, schemas)
	dec := mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: reg.URL})
	f := fixtureNamed(t, fixtures, "enrollment_created_evolved_minor1")
	for range 10 {
		got, err := dec.Decode(f.message(t))
		if err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, f, got)
	}
	if n := reg.requests.Load(); n != 1 {
		t.Fatalf("%d requests for an unknown id, want 1", n)
	}
	// Other ids are still looked up: one unknown id is not an outage.
	basic := fixtureNamed(t, fixtures, "enrollment_created_basic")
	if _, err := dec.Decode(basic.message(t)); err != nil {
		t.Fatal(err)
	}
	if n := reg.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestRegistryIncompatibleSchema: a writer schema the built-in one cannot
// read is poison, not a silent misreading.
func TestRegistryIncompatibleSchema(t *testing.T) {
	fixtures := loadFixtures(t)
	schemas := fixtureSchemas(t, fixtures)
	basic := fixtureNamed(t, fixtures, "enrollment_created_basic")
	tests := map[string]string{
		// Schema id 1 is said to be another type's.
		"another type": schemas[4],
		// The same record with the user id as a string.
		"changed field type": strings.Replace(schemas[1], `{"name":"id","type":"long"}`, `{"name":"id","type":"string"}`, 1),
		// A required field the reader needs is gone.
		"field removed": strings.Replace(schemas[1], `{"name":"mode","type":"string"},`, ``, 1),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if s == schemas[1] {
				t.Fatal("test schema unchanged")
			}
			reg := MustRegistry(t, map[int]string{1: s})
			dec := mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: reg.URL})
			for range 3 {
				if _, err := dec.Decode(basic.message(t)); !errors.Is(err, consumer.ErrUndecodable) {
					t.Fatalf("err %v, want poison", err)
				}
			}
			if n := reg.requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestRegistryRequest checks what is asked of the registry: the Confluent
// path, accept header and basic authentication.
func TestRegistryRequest(t *testing.T) {
	fixtures := loadFixtures(t)
	schemas := fixtureSchemas(t, fixtures)
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		io.WriteString(w, `{"schema":`+quoteJSON(schemas[1])+`}`)
	}))
	t.Cleanup(srv.Close)
	dec := mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: srv.URL + "/", RegistryUsername: "key", RegistryPassword: "secret"})
	if _, err := dec.Decode(fixtureNamed(t, fixtures, "enrollment_created_basic").message(t)); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Method != http.MethodGet || got.URL.Path != "/schemas/ids/1" {
		t.Fatalf("request %v", got)
	}
	if u, p, ok := got.BasicAuth(); !ok || u != "key" || p != "secret" {
		t.Fatalf("basic auth %q %q %v", u, p, ok)
	}
	if !strings.Contains(got.Header.Get("Accept"), "application/vnd.schemaregistry.v1+json") {
		t.Fatalf("accept %q", got.Header.Get("Accept"))
	}

	for _, bad := range []string{"registry:8081", "ftp://registry", "http://"} {
		if _, err := consumer.NewAvroDecoder(consumer.AvroOptions{RegistryURL: bad}); err == nil {
			t.Errorf("registry URL %q accepted", bad)
		}
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
