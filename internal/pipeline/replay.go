package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/store"
)

// Replayer consumes topics into a store that is not (yet) serving: the
// engine of rebuilds, online and offline.
//
// Into an empty store it replays in two phases. First a bulk load: the
// history up to the head as it was at the start goes through a
// store.Loader, which sorts it by user and writes each record once, in key
// order, several times faster than batch-by-batch Apply. Then, from the
// offsets the load stored, the ordinary consumer takes over and follows the
// head, if the replay follows (an online rebuild, which must pass the live
// projection's offsets); a replay that does not follow (the rebuild
// command's, a new replica's first catch-up) is done once the load is
// written. A merge (a base store given) is such a load too, from the base's
// offsets, its records merged in (store.NewMergeLoader). Into a store that
// is not empty, it is the ordinary consumer from the start.
type Replayer struct {
	cfg consumer.Config
	st  *store.Store
	dec *consumer.Decoder
	m   *consumer.Metrics // nil: private ones
	log *slog.Logger
	// follow: after the bulk load, the ordinary consumer follows the head.
	follow bool
	stop   context.CancelFunc
	done   chan error
	err    error
	ended  bool
	rate   rateMeter

	mu     sync.Mutex
	c      *consumer.Consumer   // the current phase's consumer
	ran    []*consumer.Consumer // every phase's, for WaitClosed
	loader *store.Loader        // during the bulk load, else nil
	phase  string
	loaded uint64 // messages the bulk load wrote
}

// The phases a replay goes through, as Progress reports them.
const (
	PhaseLoading = "loading" // reading the history into sorted runs
	PhaseWriting = "writing" // writing the sorted history into the file
	PhaseFollow  = "following"
	// PhaseDone: the bulk load is written, up to the head as it was at the
	// start, and the replay does not follow the head.
	PhaseDone = "done"
)

// Replay starts consuming into st from its stored offsets (none: the
// earliest, or cfg.StartAt), until it caught up with the head as it was at
// the start (WaitCaughtUp); into an empty store, by a bulk load, which does
// not follow the head after that. Its consumer metrics are private, so that
// they do not mix with the live consumer's.
func Replay(ctx context.Context, cfg consumer.Config, st *store.Store, dec *consumer.Decoder, log *slog.Logger) (*Replayer, error) {
	return replay(ctx, cfg, st, nil, dec, nil, false, log)
}

// replay is Replay whose consumers count into m, if not nil (a first
// catch-up's, which no live consumer counts alongside), and which follows
// the head after a bulk load if follow. With a base, the bulk load is a
// merge with it, from its offsets (store.NewMergeLoader).
func replay(ctx context.Context, cfg consumer.Config, st, base *store.Store, dec *consumer.Decoder, m *consumer.Metrics, follow bool, log *slog.Logger) (*Replayer, error) {
	r := &Replayer{cfg: cfg, st: st, dec: dec, m: m, follow: follow, log: log, done: make(chan error, 1), phase: PhaseFollow}
	var sink consumer.Sink = StoreSink{Store: st}
	newLoader := st.NewLoader
	if base != nil {
		newLoader = func(opts store.LoaderOptions) (*store.Loader, error) { return st.NewMergeLoader(base, opts) }
	}
	switch l, err := newLoader(store.DefaultLoaderOptions()); {
	case err == nil:
		sink, r.loader, r.phase = loaderSink{l}, l, PhaseLoading
	case !errors.Is(err, store.ErrNotEmpty):
		return nil, err
	}
	c, err := r.newConsumer(sink)
	if err != nil {
		if r.loader != nil {
			r.loader.Close()
		}
		return nil, err
	}
	r.c, r.ran = c, []*consumer.Consumer{c}
	rctx, stop := context.WithCancel(ctx)
	r.stop = stop
	go func() { r.done <- r.run(rctx) }()
	return r, nil
}

func (r *Replayer) newConsumer(sink consumer.Sink) (*consumer.Consumer, error) {
	m := r.m
	if m == nil {
		m = consumer.NewMetrics(prometheus.NewRegistry())
	}
	return consumer.New(r.cfg, sink, r.dec, m, r.log)
}

func (r *Replayer) current() *consumer.Consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

// run is the replay's goroutine: the bulk load if there is one, then, if
// there was none or the replay follows, the ordinary consumer until
// stopped.
func (r *Replayer) run(ctx context.Context) error {
	if r.loader != nil {
		err := r.load(ctx)
		r.loader.Close()
		if err != nil || ctx.Err() != nil {
			return err
		}
		if !r.follow {
			r.mu.Lock()
			r.loader, r.phase = nil, PhaseDone
			r.mu.Unlock()
			<-ctx.Done() // nothing more to read until stopped
			return nil
		}
		c, err := r.newConsumer(StoreSink{Store: r.st})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.c, r.loader, r.phase = c, nil, PhaseFollow
		r.ran = append(r.ran, c)
		r.mu.Unlock()
	}
	return r.current().Run(ctx)
}

// load runs the bulk consumer until it has caught up with the head as it was
// at its start, stops it (its last batch is added whole) and writes the
// sorted history into the store.
func (r *Replayer) load(ctx context.Context) error {
	c := r.current()
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(lctx) }()
	t := time.NewTicker(waitCheck)
	defer t.Stop()
	for caughtUp := false; !caughtUp; {
		select {
		case err := <-ran:
			if err == nil && ctx.Err() == nil {
				err = fmt.Errorf("replay stopped")
			}
			return err
		case <-t.C:
			caughtUp = c.Ready() == nil
		}
	}
	stop()
	if err := <-ran; err != nil {
		return err
	}
	r.mu.Lock()
	r.phase = PhaseWriting
	r.mu.Unlock()
	start := time.Now()
	res, err := r.loader.Finish()
	if err != nil {
		return fmt.Errorf("write the sorted history: %w", err)
	}
	r.log.Info("bulk load written", "messages", r.loader.Messages(), "events", res.Events, "users", res.Users,
		"courses", res.Courses, "sorted_runs", res.Runs, "seconds", time.Since(start).Seconds(),
		"users_seconds", res.UsersTime.Seconds(), "indexes_seconds", res.IndexTime.Seconds())
	r.mu.Lock()
	r.loaded = uint64(r.loader.Messages())
	r.mu.Unlock()
	return nil
}

// loaderSink hands the bulk consumer's batches to a store.Loader.
type loaderSink struct{ l *store.Loader }

func (s loaderSink) Apply(b consumer.Batch) (int, error) {
	return 0, s.l.Add(store.Batch{Events: b.Events, Offsets: storeOffsets(b.Offsets), Messages: b.Messages})
}

// UnboundedWrites: a loader sorts what it takes and writes at the end, so
// no batch holds a transaction's pages in memory.
func (loaderSink) UnboundedWrites() {}

// Positions: a merge's base's offsets; none for a load into an empty store.
func (s loaderSink) Positions() (map[consumer.Position]int64, error) {
	return positions(s.l.Positions()), nil
}

// Stop stops consuming. After the bulk load, the batch in progress is
// committed whole; during it, nothing is in the store yet.
func (r *Replayer) Stop() error {
	if !r.ended {
		r.stop()
		r.err = <-r.done
		r.ended = true
	}
	return r.err
}

// WaitClosed waits for the readers of the replay's consumers to close
// (kafka-go's Close waits out a long poll: up to the consumer's MaxWait
// after it stopped; the bulk load's closes overlap its writing and what
// follows). Stop must have returned.
func (r *Replayer) WaitClosed() {
	r.mu.Lock()
	ran := r.ran
	r.mu.Unlock()
	for _, c := range ran {
		c.WaitClosed()
	}
}

// Progress reads the replay's position.
func (r *Replayer) Progress() Progress {
	r.mu.Lock()
	c, loader, phase, loaded := r.c, r.loader, r.phase, r.loaded
	r.mu.Unlock()
	parts := c.Partitions()
	var next, end, behind int64
	for _, p := range parts {
		next += p.Next
		end += p.End
		behind += max(p.End-p.Next, 0)
	}
	f, _ := r.st.Freshness()
	pr := Progress{Applied: f.Applied, Behind: behind, Partitions: parts, Phase: phase, BulkLoaded: loaded}
	if loader != nil {
		pr.Applied = uint64(loader.Messages()) // taken in, written at the end of the load
	}
	switch {
	case end > 0:
		pr.Ratio = float64(next) / float64(end)
	case len(parts) > 0: // every partition is empty: nothing to replay
		pr.Ratio = 1
	} // no partition known yet: 0, not done
	pr.Rate = r.rate.observe(pr.Applied)
	if pr.Rate > 0 {
		pr.ETA = time.Duration(float64(behind) / pr.Rate * float64(time.Second))
	}
	return pr
}

// WaitCaughtUp waits until the replay reached the head of every partition
// as it was when the replay started, reporting progress every half second.
func (r *Replayer) WaitCaughtUp(ctx context.Context, report func(Progress)) error {
	return r.wait(ctx, report, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.phase == PhaseDone || r.phase == PhaseFollow && r.c.Ready() == nil
	})
}

// WaitPast waits until the replay's position is at or past offsets on every
// partition.
func (r *Replayer) WaitPast(ctx context.Context, offsets map[store.Partition]int64, report func(Progress)) error {
	return r.wait(ctx, report, func() bool {
		mine := map[store.Partition]int64{}
		r.mu.Lock()
		c, phase := r.c, r.phase
		r.mu.Unlock()
		if phase != PhaseFollow {
			return false
		}
		for _, p := range c.Partitions() {
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
	// done is checked every few milliseconds, so that a replay that is done
	// does not wait for the next report; progress is reported every half
	// second.
	check := time.NewTicker(waitCheck)
	defer check.Stop()
	var reported time.Time
	for {
		if report != nil && time.Since(reported) >= reportEvery {
			report(r.Progress())
			reported = time.Now()
		}
		if done() {
			return nil
		}
		if err := r.current().Ready(); err != nil && isFailure(err) {
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
		case <-check.C:
		}
	}
}

// How often a replay checks whether it is done, and reports its progress.
const (
	waitCheck   = 5 * time.Millisecond
	reportEvery = 500 * time.Millisecond
)

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
