package pipeline

import (
	"context"
	"fmt"

	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/store"
)

// Replayer consumes topics into a store that is not (yet) serving: the
// engine of rebuilds, online and offline.
type Replayer struct {
	c     *consumer.Consumer
	st    *store.Store
	stop  context.CancelFunc
	done  chan error
	err   error
	ended bool
	rate  rateMeter
}

// Replay starts consuming into st from its stored offsets (none: the
// earliest, or cfg.StartAt). Its consumer metrics are private, so that they
// do not mix with the live consumer's.
func Replay(ctx context.Context, cfg consumer.Config, st *store.Store, dec *consumer.Decoder, log *slog.Logger) (*Replayer, error) {
	c, err := consumer.New(cfg, StoreSink{Store: st}, dec, consumer.NewMetrics(prometheus.NewRegistry()), log)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	r := &Replayer{c: c, st: st, stop: stop, done: make(chan error, 1)}
	go func() { r.done <- c.Run(rctx) }()
	return r, nil
}

// Stop stops consuming; the batch in progress is committed whole.
func (r *Replayer) Stop() error {
	if !r.ended {
		r.stop()
		r.err = <-r.done
		r.ended = true
	}
	return r.err
}

// Progress reads the replay's position.
func (r *Replayer) Progress() Progress {
	parts := r.c.Partitions()
	var next, end, behind int64
	for _, p := range parts {
		next += p.Next
		end += p.End
		behind += max(p.End-p.Next, 0)
	}
	f, _ := r.st.Freshness()
	pr := Progress{Applied: f.Applied, Behind: behind, Partitions: parts}
	switch {
	case end > 0:
		pr.Ratio = float64(next) / float64(end)
	case len(parts) > 0: // every partition is empty: nothing to replay
		pr.Ratio = 1
	} // no partition known yet: 0, not done
	pr.Rate = r.rate.observe(f.Applied)
	if pr.Rate > 0 {
		pr.ETA = time.Duration(float64(behind) / pr.Rate * float64(time.Second))
	}
	return pr
}

// WaitCaughtUp waits until the replay reached the head of every partition
// as it was when the replay started, reporting progress every half second.
func (r *Replayer) WaitCaughtUp(ctx context.Context, report func(Progress)) error {
	return r.wait(ctx, report, func() bool { return r.c.Ready() == nil })
}

// WaitPast waits until the replay's position is at or past offsets on every
// partition.
func (r *Replayer) WaitPast(ctx context.Context, offsets map[store.Partition]int64, report func(Progress)) error {
	return r.wait(ctx, report, func() bool {
		mine := map[store.Partition]int64{}
		for _, p := range r.c.Partitions() {
			mine[store.Partition{Topic: p.Topic, Partition: p.Partition}] = p.Next
		}
		for p, off := range offsets {
			if mine[p] < off {
				return false
			}
		}
		return true
	})
}

func (r *Replayer) wait(ctx context.Context, report func(Progress), done func() bool) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if report != nil {
			report(r.Progress())
		}
		if done() {
			return nil
		}
		if err := r.c.Ready(); err != nil && isFailure(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-r.done:
			r.ended, r.err = true, err
			if err == nil {
				err = fmt.Errorf("replay stopped")
			}
			return err
		case <-t.C:
		}
	}
}

// isFailure tells a stopped partition (poison under policy fail) from
// ordinary catching up.
func isFailure(err error) bool { return err != nil && consumer.IsPartitionFailure(err) }

// rateMeter is an exponentially smoothed messages-per-second rate.
type rateMeter struct {
	last  uint64
	at    time.Time
	value float64
}

func (m *rateMeter) observe(applied uint64) float64 {
	now := time.Now()
	if !m.at.IsZero() {
		if dt := now.Sub(m.at).Seconds(); dt > 0.1 {
			inst := float64(applied-m.last) / dt
			if m.value == 0 {
				m.value = inst
			} else {
				m.value = 0.7*m.value + 0.3*inst
			}
		} else {
			return m.value
		}
	}
	m.last, m.at = applied, now
	return m.value
}
