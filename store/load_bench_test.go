package store_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// BenchmarkLoad is a bulk load of 300k events (the ingest mix over 30k users
// and 1,000 courses) into an empty store through a Loader with runs small
// enough to spill, against BenchmarkLoadApply, the same events through Apply
// in batches of 50,000 (the consumer's catch-up batch): what a rebuild gains.
func BenchmarkLoad(b *testing.B) {
	opts := store.DefaultLoaderOptions()
	opts.RunBytes = 4 << 20
	timeLoads(b, loadBenchEvents(), func(s *store.Store) (*store.Loader, error) { return s.NewLoader(opts) })
}

// BenchmarkLoadFinish times only a load's writing phase (Finish), the
// part of a rebuild that follows reading the topics.
func BenchmarkLoadFinish(b *testing.B) {
	opts := store.DefaultLoaderOptions()
	opts.RunBytes = 4 << 20
	events := loadBenchEvents()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := openNoSync(b)
		l, err := s.NewLoader(opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(events); i += 5000 {
			if err := l.Add(store.Batch{Events: events[i:min(i+5000, len(events))], Messages: 5000}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if _, err := l.Finish(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

func BenchmarkLoadApply(b *testing.B) {
	timeApplies(b, loadBenchEvents(), func() *store.Store { return openNoSync(b) })
}

func loadBenchEvents() []projection.Event {
	keys, names := benchCourses(1000)
	return benchEvents(rand.New(rand.NewPCG(5, 6)), 300_000, 30_000, keys, names)
}

func openNoSync(b *testing.B) *store.Store {
	opts := store.DefaultOptions()
	opts.NoSync = true
	s, err := store.Open(filepath.Join(b.TempDir(), store.FileName), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkMerge is a replica back from an outage: a projection of the
// first part of those events, merged with the rest (a half, a quarter, an eighth, a
// thirty-second of them) into a new file by a merge loader, against the
// same rest applied to (a copy of) the projection in batches of 50,000.
// Where the two cross is where pipeline.MergeBacklogRatio should be.
func BenchmarkMerge(b *testing.B) {
	events := loadBenchEvents()
	for _, part := range []int{2, 4, 8, 32} {
		cut := len(events) - len(events)/part
		base := mergeBase(b, events[:cut])
		rest := events[cut:]
		b.Run(fmt.Sprintf("rest=1_%d/merge", part), func(b *testing.B) {
			timeLoads(b, rest, func(s *store.Store) (*store.Loader, error) {
				return s.NewMergeLoader(base, store.DefaultLoaderOptions())
			})
		})
		b.Run(fmt.Sprintf("rest=1_%d/apply", part), func(b *testing.B) {
			timeApplies(b, rest, func() *store.Store { return copyNoSync(b, base) })
		})
	}
}

// timeLoads times loads of events into a new file by the loaders newLoader
// makes, the events added 5,000 at a time, and reports events/s.
func timeLoads(b *testing.B, events []projection.Event, newLoader func(*store.Store) (*store.Loader, error)) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := openNoSync(b)
		b.StartTimer()
		l, err := newLoader(s)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(events); i += 5000 {
			if err := l.Add(store.Batch{Events: events[i:min(i+5000, len(events))], Messages: 5000}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Finish(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// timeApplies times Apply of events in batches of 50,000 (the consumer's
// catch-up batch) into the stores open opens, and reports events/s.
func timeApplies(b *testing.B, events []projection.Event, open func() *store.Store) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := open()
		b.StartTimer()
		for i := 0; i < len(events); i += 50_000 {
			if _, err := s.Apply(store.Batch{Events: events[i:min(i+50_000, len(events))], Messages: 50_000}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// copyNoSync opens a copy of base without fsyncs.
func copyNoSync(b *testing.B, base *store.Store) *store.Store {
	path := filepath.Join(b.TempDir(), store.FileName)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := base.Snapshot(f, nil); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	opts := store.DefaultOptions()
	opts.NoSync = true
	s, err := store.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// mergeBase is a projection of events, bulk-loaded, closed at cleanup.
func mergeBase(b *testing.B, events []projection.Event) *store.Store {
	s := openNoSync(b)
	b.Cleanup(func() { s.Close() })
	l, err := s.NewLoader(store.DefaultLoaderOptions())
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Add(store.Batch{Events: events, Offsets: map[store.Partition]int64{{Topic: "t"}: int64(len(events))}, Messages: len(events)}); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Finish(); err != nil {
		b.Fatal(err)
	}
	return s
}
