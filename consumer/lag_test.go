package consumer_test

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/store"
)

// gatedSink applies the first batch, then holds every later one until
// open is closed.
type gatedSink struct {
	pipeline.StoreSink
	open    chan struct{}
	opened  sync.Once
	applied atomic.Int32
}

func (s *gatedSink) release() { s.opened.Do(func() { close(s.open) }) }

func (s *gatedSink) Apply(b consumer.Batch) (int, error) {
	if s.applied.Load() > 0 {
		<-s.open
	}
	defer s.applied.Add(1)
	return s.StoreSink.Apply(b)
}

// TestLag: Lag, which every query asks for, is the partitions' lag summed
// (their End - Next), moved by each commit; 0 once caught up.
func TestLag(t *testing.T) {
	broker := MustBroker(t, 3, "events")
	gen := synth.New(5, 80, 5, time.Now().UTC())
	msgs := append(gen.Catalog(), gen.History(3000)...)
	produce(t, broker, "events", msgs)

	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // after the consumer stopped
	sink := &gatedSink{StoreSink: pipeline.StoreSink{Store: s}, open: make(chan struct{})}
	cfg := consumer.DefaultConfig()
	cfg.Brokers, cfg.Topics = []string{broker}, []string{"events"}
	cfg.BatchSize, cfg.CatchUpBatchSize = 100, 0 // many small batches
	cfg.BatchWait, cfg.MaxWait = 20*time.Millisecond, 50*time.Millisecond
	cfg.PollInterval = time.Hour // end offsets from the first poll only: commits alone move the lag
	c, stop := runConsumer(t, cfg, sink, prometheus.NewRegistry())
	t.Cleanup(sink.release) // before the stop: a held batch would keep Run from returning

	summed := func() (next, end int64) {
		for _, p := range c.Partitions() {
			next, end = next+p.Next, end+p.End
		}
		return next, end
	}
	waitFor(t, "the first batch", time.Minute, func() bool {
		next, end := summed()
		return sink.applied.Load() == 1 && next > 0 && end == int64(len(msgs))
	})
	next, end := summed()
	if lag, _ := c.Lag(); lag != end-next || lag <= 0 {
		t.Fatalf("Lag %d with the first batch applied, want %d (end %d - next %d)", lag, end-next, end, next)
	}
	sink.release()
	waitFor(t, "caught up", time.Minute, func() bool { return c.Ready() == nil })
	if lag, _ := c.Lag(); lag != 0 {
		t.Fatalf("Lag %d once caught up, want 0", lag)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
