package consumer_test

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/projection"
)

// batchRecorder is a sink that keeps the size of every batch.
type batchRecorder struct {
	mu        sync.Mutex
	sizes     []int
	maxWrites int // most records one batch writes: distinct users + enrollments
	offsets   map[consumer.Position]int64
}

func (r *batchRecorder) Apply(b consumer.Batch) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, b.Messages)
	users, writes := map[int64]bool{}, 0
	for _, e := range b.Events {
		if id, ok := projection.UserOf(e); ok && !users[id] {
			users[id] = true
			writes++
		}
		if _, ok := e.(projection.Enrollment); ok {
			writes++
		}
	}
	r.maxWrites = max(r.maxWrites, writes)
	for p, o := range b.Offsets {
		r.offsets[p] = o
	}
	return 0, nil
}

func (r *batchRecorder) Positions() (map[consumer.Position]int64, error) { return nil, nil }

// unboundedRecorder is a batchRecorder that, like a bulk load's sink, holds
// no transaction: the consumer does not bound its batches' writes.
type unboundedRecorder struct{ *batchRecorder }

func (unboundedRecorder) UnboundedWrites() {}

func (r *batchRecorder) snapshot() (sizes []int, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.sizes {
		total += n
	}
	return append([]int(nil), r.sizes...), total
}

// TestBatchesGrowWhileCatchingUp checks that batches grow up to
// CatchUpBatchSize while the consumer is far behind the head, never past
// it, and go back to BatchSize once it has caught up.
func TestBatchesGrowWhileCatchingUp(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		catchUp, maxWrites, want int // want: the largest batch allowed
		unbounded                bool
	}{
		{"catch-up batches", 1500, 100000, 1500, false},
		{"bounded by writes", 5000, 400, 5000, false},
		{"a sink without transactions is not bounded by writes", 5000, 400, 5000, true},
		{"off", 0, 100000, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker := MustBroker(t, 1, "events")
			g := synth.New(5, 300, 20, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			produce(t, broker, "events", g.History(6000))

			cfg := consumer.DefaultConfig()
			cfg.Brokers, cfg.Topics = []string{broker}, []string{"events"}
			cfg.PollInterval, cfg.MaxWait = 200*time.Millisecond, 50*time.Millisecond
			cfg.BatchSize, cfg.BatchWait = 100, 20*time.Millisecond
			cfg.CatchUpBatchSize, cfg.CatchUpWait, cfg.CatchUpMaxWrites = tc.catchUp, 10*time.Second, tc.maxWrites
			rec := &batchRecorder{offsets: map[consumer.Position]int64{}}
			var sink consumer.Sink = rec
			if tc.unbounded {
				sink = unboundedRecorder{rec}
			}
			_, stop := runConsumer(t, cfg, sink, prometheus.NewRegistry())
			defer func() {
				if err := stop(); err != nil {
					t.Error(err)
				}
			}()
			waitFor(t, "catch-up", 30*time.Second, func() bool { _, n := rec.snapshot(); return n == 6000 })
			sizes, _ := rec.snapshot()
			largest := 0
			for _, n := range sizes {
				largest = max(largest, n)
			}
			if largest > tc.want {
				t.Errorf("largest batch %d messages, want at most %d (sizes %v)", largest, tc.want, sizes)
			}
			// A batch ends at the message that reaches the bound; a
			// message carries one event.
			rec.mu.Lock()
			maxWrites := rec.maxWrites
			rec.mu.Unlock()
			switch {
			case tc.unbounded && maxWrites <= tc.maxWrites+2:
				t.Errorf("catch-up batches write at most %d records: cut at CatchUpMaxWrites %d for a sink without transactions (sizes %v)",
					maxWrites, tc.maxWrites, sizes)
			case !tc.unbounded && tc.catchUp > 0 && maxWrites > tc.maxWrites+2:
				t.Errorf("a catch-up batch writes %d records, want at most %d", maxWrites, tc.maxWrites+2)
			}
			if tc.catchUp > 0 && largest <= cfg.BatchSize {
				t.Errorf("batches did not grow while catching up: sizes %v", sizes)
			}
			if tc.catchUp == 0 && len(sizes) < 6000/cfg.BatchSize {
				t.Errorf("%d batches for 6000 messages at batch size %d", len(sizes), cfg.BatchSize)
			}

			// Caught up: fewer new messages than a batch are committed
			// promptly, in batches of at most BatchSize.
			produce(t, broker, "events", g.History(80))
			waitFor(t, "live messages", 5*time.Second, func() bool { _, n := rec.snapshot(); return n == 6080 })
			after, _ := rec.snapshot()
			for _, n := range after[len(sizes):] {
				if n > cfg.BatchSize {
					t.Errorf("a batch of %d messages after catching up, want at most %d", n, cfg.BatchSize)
				}
			}
		})
	}
}
