package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// Options configure a Pipeline.
type Options struct {
	Path     string // the projection file
	Store    store.Options
	Consumer consumer.Config
	Decoder  *consumer.Decoder
	Metrics  *consumer.Metrics // shared by every live consumer, across rebuilds
	Log      *slog.Logger
	// Registerer receives the rebuild metrics.
	Registerer prometheus.Registerer
	// BulkLoadEmpty makes Run's first catch-up into an empty projection (a
	// new replica) a rebuild's bulk load, several times faster than batch
	// after batch (see Run).
	BulkLoadEmpty bool
	// MergeCatchUpMin makes a projection that holds data catch up by a
	// merge into a new file (see Run) when its backlog is at least this many
	// messages, and at least 1/MergeBacklogRatio of the messages the
	// projection applied: at start-up, and while running; 0: never.
	MergeCatchUpMin int64
	// MergeCheckEvery is how often a running pipeline compares its lag with
	// the merge threshold; 0: every 5 seconds.
	MergeCheckEvery time.Duration
}

// MergeBacklogRatio: a merge rewrites every record of the projection,
// where batch-by-batch Apply rewrites a page per user a batch touches. In
// store's BenchmarkMerge the two break even at a backlog of about an eighth
// of the history the projection holds, and the merge is twice as fast at a
// quarter: it must win clearly, since it needs as much free disk again as
// the projection takes.
const MergeBacklogRatio = 4

// Pipeline is the serving projection: the store queries read and the
// consumer that feeds it. Rebuild replaces the store by one replayed from the
// topics, while queries go on.
type Pipeline struct {
	opts Options
	log  *slog.Logger
	rm   *rebuildMetrics

	// mu guards st: queries hold it shared for the duration of a read, a
	// swap holds it exclusively, so no read ever meets a closed store.
	mu sync.RWMutex
	st *store.Store

	cons     atomic.Pointer[consumer.Consumer]
	pause    chan pauseRequest // Run's consumer stops while a swap happens
	running  atomic.Bool       // a rebuild is in progress
	progress atomic.Pointer[Progress]
	// closing runs the waits for stopped consumers' readers to close
	// (consumer.WaitClosed), so that stopping one costs no long poll;
	// Close waits for them.
	closing sync.WaitGroup
	// background runs the rebuilds StartRebuild started; Close waits for
	// them.
	background sync.WaitGroup
}

type pauseRequest struct {
	paused chan struct{} // closed once the live consumer stopped
	resume chan struct{} // closed by the swapper when done
}

// Open opens the projection file.
func Open(opts Options) (*Pipeline, error) {
	st, err := store.Open(opts.Path, opts.Store)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	p := &Pipeline{opts: opts, log: opts.Log, st: st, pause: make(chan pauseRequest),
		rm: newRebuildMetrics(opts.Registerer)}
	// Files left by a rebuild or compaction that did not finish are useless.
	os.Remove(rebuildPath(opts.Path))
	os.Remove(opts.Path + ".compact")
	return p, nil
}

func rebuildPath(path string) string { return path + ".rebuild" }

// Store calls fn with the current store, held so that a swap waits for fn.
func (p *Pipeline) Store(fn func(*store.Store) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return fn(p.st)
}

// StatusFunc answers a query from the current store, lending the answer
// to fn (see store.Store.StatusFunc); a swap waits for fn.
func (p *Pipeline) StatusFunc(ctx context.Context, q projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.StatusFunc(ctx, q, fn)
}

// Ready is the live consumer's readiness; before it runs, not ready.
func (p *Pipeline) Ready() error {
	if c := p.cons.Load(); c != nil {
		return c.Ready()
	}
	if pr, ok := p.RebuildProgress(); ok && pr.Running {
		return fmt.Errorf("first catch-up: bulk-loading into a new file, %.1f%% (GET /admin/rebuild)", 100*pr.Ratio)
	}
	return errors.New("starting")
}

// Lag is the live consumer's lag and connectivity.
func (p *Pipeline) Lag() (int64, bool) {
	if c := p.cons.Load(); c != nil {
		return c.Lag()
	}
	return 0, false
}

// Partitions is the live consumer's view of its partitions.
func (p *Pipeline) Partitions() []consumer.PartitionStatus {
	if c := p.cons.Load(); c != nil {
		return c.Partitions()
	}
	return nil
}

// Run consumes into the current store until ctx ends, pausing while a
// rebuild swaps stores. Once a live consumer was ready, the next one (on the
// swapped store, which is at least as far) is too.
//
// With BulkLoadEmpty, an empty projection first catches up as a rebuild
// does: the history is bulk-loaded into a new file (a .rebuild file next to
// the projection, which Open removes if a crash left one) until it reached
// the head as it was at the start, and the file is swapped in. Only then does
// the live consumer start. With MergeCatchUpMin, a projection that holds
// data and is far behind (a replica back from a long outage) catches up the
// same way, its records merged with the backlog (store.NewMergeLoader);
// queries go on from it meanwhile. So does a running one whose lag grows
// past the threshold (a burst of events, a replica cut off from the
// brokers): its live consumer stops for the merge, queries go on from the
// projection (flagged stale), and a new consumer follows on the merged
// file. A failure falls back to the ordinary catch-up.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.firstCatchUp(ctx); err != nil {
		p.log.Warn("first catch-up by bulk load or merge failed; catching up batch by batch", "err", err)
	}
	var check <-chan time.Time // MergeCheckEvery's ticks; nil: no merge while running
	if p.opts.MergeCatchUpMin > 0 {
		every := p.opts.MergeCheckEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		check = t.C
	}
	for {
		c, err := consumer.New(p.opts.Consumer, StoreSink{Store: p.current()}, p.opts.Decoder, p.opts.Metrics, p.log)
		if err != nil {
			return err
		}
		if prev := p.cons.Load(); prev != nil && prev.Ready() == nil {
			c.MarkCaughtUp()
		}
		p.cons.Store(c)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		// stopConsumer stops c, for a pause or a merge.
		stopConsumer := func() error {
			stop()
			err := <-done
			p.closing.Go(c.WaitClosed)
			return err
		}
	running:
		for {
			select {
			case err := <-done:
				stop()
				p.closing.Go(c.WaitClosed)
				if err != nil || ctx.Err() != nil {
					return err
				}
				return errors.New("consumer stopped unexpectedly")
			case req := <-p.pause:
				err := stopConsumer()
				close(req.paused)
				if err != nil {
					return err
				}
				select {
				case <-req.resume:
				case <-ctx.Done():
					return nil
				}
				break running
			case <-check:
				switch stopped, err := p.mergeIfFallenBehind(ctx, c, stopConsumer); {
				case err != nil:
					return err
				case ctx.Err() != nil:
					return nil
				case stopped:
					break running
				}
			}
		}
	}
}

// mergeIfFallenBehind catches the live consumer c up by a merge if it has
// fallen far behind: it stops c (with stop), decides again on the stored
// offsets as at start-up (c may have caught up meanwhile), and merges. It
// returns whether it stopped c, and stop's error.
func (p *Pipeline) mergeIfFallenBehind(ctx context.Context, c *consumer.Consumer, stop func() error) (stopped bool, err error) {
	if !p.fallenBehind(c) || !p.running.CompareAndSwap(false, true) { // a rebuild or compaction runs: it goes on
		return false, nil
	}
	if err := stop(); err != nil {
		p.running.Store(false)
		return true, err
	}
	switch merge, err := p.farBehind(ctx); {
	case err != nil:
		p.running.Store(false)
		p.log.Warn("catching up batch by batch", "err", err)
	case merge:
		if err := p.runRebuild(ctx, time.Time{}, catchUpMerge); err != nil && ctx.Err() == nil {
			p.log.Warn("catch-up by merge failed; catching up batch by batch", "err", err)
		}
	default:
		p.running.Store(false)
	}
	return true, nil
}

// fallenBehind tells whether the live consumer c, caught up once, lags so
// far behind that a merge may be worth it (MergeCatchUpMin,
// MergeBacklogRatio): farBehind decides, once c is stopped.
func (p *Pipeline) fallenBehind(c *consumer.Consumer) bool {
	if c.Ready() != nil {
		return false // still catching up since the start: as decided then
	}
	lag, connected := c.Lag()
	if !connected || lag < p.opts.MergeCatchUpMin {
		return false
	}
	f, err := p.current().Freshness()
	return err == nil && p.worthMerging(lag, f.Applied)
}

// worthMerging tells whether a backlog is large enough for a merge, for a
// projection that applied so many messages: MergeCatchUpMin and
// MergeBacklogRatio.
func (p *Pipeline) worthMerging(backlog int64, applied uint64) bool {
	return backlog >= p.opts.MergeCatchUpMin && backlog >= int64(applied/MergeBacklogRatio)
}

func (p *Pipeline) current() *store.Store {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st
}

// Snapshot writes a consistent copy of the current projection, offsets
// included.
func (p *Pipeline) Snapshot(w io.Writer, size func(int64)) (int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.st.Snapshot(w, size)
}

// Close waits for the rebuild StartRebuild started, if any (the context it
// was given ends it), and for the stopped consumers' readers to close, then
// closes the store. Run, and any Rebuild or Compact, must have returned.
func (p *Pipeline) Close() error {
	p.background.Wait()
	p.closing.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st.Close()
}

// Progress is a rebuild's position.
type Progress struct {
	Running bool   `json:"running"`
	Phase   string `json:"phase,omitempty"` // PhaseLoading, PhaseWriting, PhaseFollow
	// BulkLoaded is how many messages the bulk load wrote (0: there was
	// none, the file was not empty).
	BulkLoaded uint64                     `json:"messages_bulk_loaded"`
	Started    time.Time                  `json:"started"`
	From       time.Time                  `json:"from,omitzero"`
	Applied    uint64                     `json:"messages_applied"`
	Behind     int64                      `json:"messages_behind"`
	Ratio      float64                    `json:"ratio"`
	Rate       float64                    `json:"messages_per_second"`
	ETA        time.Duration              `json:"eta_ns"`
	Partitions []consumer.PartitionStatus `json:"partitions"`
	Finished   time.Time                  `json:"finished,omitzero"`
	Error      string                     `json:"error,omitempty"`
}

// RebuildProgress returns the current or last rebuild's progress.
func (p *Pipeline) RebuildProgress() (Progress, bool) {
	if pr := p.progress.Load(); pr != nil {
		return *pr, true
	}
	return Progress{}, false
}

// Compact rewrites the live projection into a new, dense file and swaps it
// in, while queries go on: consuming pauses for the copy, so nothing written
// is lost. Afterwards no byte of erased data (retired users) remains in the
// file, and the file is as small as its content.
func (p *Pipeline) Compact(ctx context.Context) (before, after int64, err error) {
	if !p.running.CompareAndSwap(false, true) {
		return 0, 0, ErrRebuildRunning
	}
	defer p.running.Store(false)
	req := pauseRequest{paused: make(chan struct{}), resume: make(chan struct{})}
	select {
	case p.pause <- req:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	defer close(req.resume)
	<-req.paused

	cur := p.current()
	if fi, err := os.Stat(cur.Path()); err == nil {
		before = fi.Size()
	}
	tmp := p.opts.Path + ".compact"
	os.Remove(tmp)
	next, err := cur.CompactInto(tmp, p.opts.Store)
	if err != nil {
		return before, 0, err
	}
	if err := next.Rename(p.opts.Path); err != nil {
		next.Close()
		os.Remove(tmp)
		return before, 0, err
	}
	p.mu.Lock()
	old := p.st
	p.st = next
	p.mu.Unlock()
	if fi, err := os.Stat(p.opts.Path); err == nil {
		after = fi.Size()
	}
	p.log.Info("projection compacted", "bytes_before", before, "bytes_after", after)
	return before, after, old.Close()
}

// ErrRebuildRunning is returned when a rebuild is asked for during another.
var ErrRebuildRunning = errors.New("a rebuild or compaction is already running")

// Rebuild replays the topics from the earliest offsets (or from the first
// message at or after from) into a new file while queries go on from the
// current one; once the new projection has caught up with the live one, it
// replaces it atomically (a rename) and the live consumer continues on it.
func (p *Pipeline) Rebuild(ctx context.Context, from time.Time) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRebuildRunning
	}
	return p.runRebuild(ctx, from, rebuildOnline)
}

// StartRebuild starts Rebuild in the background, unless a rebuild or
// compaction is running (ErrRebuildRunning). Its progress is
// RebuildProgress's; a failure is logged. Close waits for it: ctx ends it.
func (p *Pipeline) StartRebuild(ctx context.Context, from time.Time) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRebuildRunning
	}
	p.background.Go(func() { _ = p.runRebuild(ctx, from, rebuildOnline) }) // logged, and in the progress
	return nil
}

// firstCatchUp bulk-loads an empty projection, if BulkLoadEmpty, and
// merges one far behind with its backlog, if MergeCatchUpMin: see Run.
func (p *Pipeline) firstCatchUp(ctx context.Context) error {
	empty, err := p.current().Empty()
	if err != nil {
		return err
	}
	kind := catchUpLoad
	switch {
	case empty && p.opts.BulkLoadEmpty:
		p.log.Info("empty projection: the first catch-up is a bulk load")
	case !empty && p.opts.MergeCatchUpMin > 0:
		if merge, err := p.farBehind(ctx); err != nil || !merge {
			return err
		}
		kind = catchUpMerge
	default:
		return nil
	}
	if !p.running.CompareAndSwap(false, true) {
		return nil // an admin rebuild got there first: it is as good
	}
	if err := p.runRebuild(ctx, time.Time{}, kind); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// farBehind asks the brokers for the projection's backlog and tells whether
// a merge should catch it up (MergeCatchUpMin, MergeBacklogRatio).
func (p *Pipeline) farBehind(ctx context.Context) (bool, error) {
	st := p.current()
	stored, err := StoreSink{Store: st}.Positions()
	if err != nil {
		return false, err
	}
	fresh, err := st.Freshness()
	if err != nil {
		return false, err
	}
	bctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	backlog, err := consumer.Backlog(bctx, p.opts.Consumer, stored)
	if err != nil {
		return false, fmt.Errorf("read the backlog: %w", err)
	}
	if !p.worthMerging(backlog, fresh.Applied) {
		p.log.Info("catching up batch by batch", "backlog", backlog, "applied", fresh.Applied)
		return false, nil
	}
	p.log.Info("far behind: catching up by a merge of the projection with its backlog into a new file",
		"backlog", backlog, "applied", fresh.Applied)
	return true, nil
}

// backlogTimeout bounds asking the brokers for the backlog: past it, the
// live consumer starts, and waits for them as it always does.
const backlogTimeout = 10 * time.Second

// What a rebuild is for, as runRebuild runs it.
type rebuildKind int

const (
	rebuildOnline rebuildKind = iota // Rebuild: a live consumer runs alongside
	catchUpLoad                      // the first catch-up of an empty projection
	catchUpMerge                     // a catch-up of one far behind
)

func (k rebuildKind) String() string {
	switch k {
	case catchUpLoad:
		return "first catch-up (bulk load)"
	case catchUpMerge:
		return "catch-up (merge)"
	}
	return "rebuild"
}

// runRebuild runs a rebuild that holds p.running, with its progress and
// metrics (see rebuild).
func (p *Pipeline) runRebuild(ctx context.Context, from time.Time, kind rebuildKind) error {
	defer p.running.Store(false)
	p.rm.running.Set(1)
	defer p.rm.running.Set(0)
	start := time.Now()
	p.progress.Store(&Progress{Running: true, Started: start, From: from})
	what := kind.String()
	if from.IsZero() {
		p.log.Info(what + " started")
	} else {
		p.log.Info(what+" started", "from", from)
	}

	err := p.rebuild(ctx, from, start, kind)
	pr, _ := p.RebuildProgress()
	pr.Running, pr.Finished = false, time.Now()
	switch {
	case err != nil && ctx.Err() != nil:
		pr.Error = err.Error()
		p.log.Info(what + " stopped by the shutdown; the live projection is unchanged")
	case err != nil:
		pr.Error = err.Error()
		p.rm.total.WithLabelValues("failed").Inc()
		p.log.Error(what+" failed; the live projection is unchanged", "err", err)
	default:
		pr.Ratio = 1
		p.rm.total.WithLabelValues("succeeded").Inc()
		p.log.Info(what+" done: the new projection is live", "took", time.Since(start).Round(time.Millisecond),
			"messages", pr.Applied)
	}
	p.progress.Store(&pr)
	return err
}

// rebuild replays into a new file and swaps it in. While a live consumer
// runs (an online rebuild), the replay first catches up with the head, then
// the live consumer is paused and the replay passes it before the swap;
// without one (a first catch-up), catching up with the head as it was at
// the start is enough. A merge replays from the live projection's offsets,
// merged with its records.
func (p *Pipeline) rebuild(ctx context.Context, from time.Time, start time.Time, kind rebuildKind) error {
	live := kind == rebuildOnline
	tmp := rebuildPath(p.opts.Path)
	os.Remove(tmp)
	opts := p.opts.Store
	opts.NoSync = true // a new file, synced before it replaces the live one
	next, err := store.Open(tmp, opts)
	if err != nil {
		return err
	}
	swapped := false
	defer func() {
		if !swapped {
			next.Close()
			os.Remove(tmp)
		}
	}()

	cfg := p.opts.Consumer
	cfg.StartAt = from
	var m *consumer.Metrics // a rebuild's counts stay out of the live consumer's
	if !live {
		m = p.opts.Metrics // a first catch-up's are the replica's
	}
	var base *store.Store
	if kind == catchUpMerge {
		base = p.current() // not written to: no live consumer runs until the swap
	}
	r, err := replay(ctx, cfg, next, base, p.opts.Decoder, m, live, p.log.With("rebuild", true))
	if err != nil {
		return err
	}
	defer func() {
		r.Stop()
		p.closing.Go(r.WaitClosed)
	}()
	if err := r.WaitCaughtUp(ctx, func(pr Progress) { p.report(pr, start, from) }); err != nil {
		return err
	}

	if live { // Freeze the live projection, then let the replay pass it.
		req := pauseRequest{paused: make(chan struct{}), resume: make(chan struct{})}
		select {
		case p.pause <- req:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer close(req.resume)
		<-req.paused
		offsets, err := p.current().Offsets()
		if err != nil {
			return err
		}
		if err := r.WaitPast(ctx, offsets, func(pr Progress) { p.report(pr, start, from) }); err != nil {
			return err
		}
	}
	if err := r.Stop(); err != nil {
		return err
	}
	p.report(r.Progress(), start, from)

	// Swap: rename the new file over the old one (the old store keeps its
	// open file), switch readers, close the old store.
	if err := next.Rename(p.opts.Path); err != nil {
		return err
	}
	swapped = true
	p.mu.Lock()
	old := p.st
	p.st = next
	p.mu.Unlock()
	return old.Close()
}

func (p *Pipeline) report(pr Progress, start time.Time, from time.Time) {
	pr.Running, pr.Started, pr.From = true, start, from
	p.progress.Store(&pr)
	p.rm.ratio.Set(pr.Ratio)
	p.rm.applied.Set(float64(pr.Applied))
	p.rm.behind.Set(float64(pr.Behind))
}

type rebuildMetrics struct {
	running prometheus.Gauge
	ratio   prometheus.Gauge
	applied prometheus.Gauge
	behind  prometheus.Gauge
	total   *prometheus.CounterVec
}

func newRebuildMetrics(reg prometheus.Registerer) *rebuildMetrics {
	m := &rebuildMetrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "enrollstatus_rebuild_running",
			Help: "1 while a rebuild replays the topics into a new projection."}),
		ratio: prometheus.NewGauge(prometheus.GaugeOpts{Name: "enrollstatus_rebuild_progress_ratio",
			Help: "Progress of the current or last rebuild, 0 to 1."}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "enrollstatus_rebuild_messages_applied",
			Help: "Messages the current or last rebuild applied."}),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{Name: "enrollstatus_rebuild_messages_behind",
			Help: "Messages the current rebuild is behind the head."}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enrollstatus_rebuilds_total",
			Help: "Rebuilds finished, by result."}, []string{"result"}),
	}
	reg.MustRegister(m.running, m.ratio, m.applied, m.behind, m.total)
	return m
}

// String describes a progress for a log line.
func (pr Progress) String() string {
	s := fmt.Sprintf("%.1f%% applied=%d behind=%d rate=%.0f/s eta=%v",
		pr.Ratio*100, pr.Applied, pr.Behind, pr.Rate, pr.ETA.Round(time.Second))
	if pr.Phase != "" {
		s += " phase=" + pr.Phase
	}
	return s
}
