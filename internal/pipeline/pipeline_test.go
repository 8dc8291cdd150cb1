package pipeline_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/leak"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

const topic = "events"

type harness struct {
	t      *testing.T
	broker string
	gen    *synth.Generator
	now    time.Time
}

func newHarness(t *testing.T) *harness {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	now := time.Now().UTC()
	return &harness{t: t, broker: c.ListenAddrs()[0], gen: synth.New(3, 200, 15, now), now: now}
}

func (h *harness) produce(msgs []synth.Message) {
	h.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(h.broker), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = kafka.Message{Key: m.Key, Value: m.Value}
	}
	if err := w.WriteMessages(context.Background(), out...); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) options(path string, reg prometheus.Registerer) pipeline.Options {
	cfg := consumer.DefaultConfig()
	cfg.Brokers, cfg.Topics = []string{h.broker}, []string{topic}
	cfg.PollInterval, cfg.BatchWait, cfg.MaxWait = 100*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond
	// Small batches, also while catching up: the tests stop, swap and
	// rebuild between batches.
	cfg.BatchSize, cfg.CatchUpBatchSize = 500, 2000
	return pipeline.Options{Path: path, Store: store.DefaultOptions(), Consumer: cfg,
		Decoder: consumer.NewDecoder(nil), Metrics: consumer.NewMetrics(reg),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg}
}

// start opens and runs a pipeline until the test ends.
func (h *harness) start(path string, mutate ...func(*pipeline.Options)) (*pipeline.Pipeline, *prometheus.Registry, func()) {
	h.t.Helper()
	reg := prometheus.NewRegistry()
	opts := h.options(path, reg)
	for _, m := range mutate {
		m(&opts)
	}
	pl, err := pipeline.Open(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("run: %v", err)
			}
			pl.Close()
		})
	}
	h.t.Cleanup(stop)
	return pl, reg, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func digestOf(t *testing.T, pl *pipeline.Pipeline) string {
	t.Helper()
	var d store.Digest
	if err := pl.Store(func(st *store.Store) (err error) { d, err = st.Digest(); return err }); err != nil {
		t.Fatal(err)
	}
	return d.Total
}

// courses is how many courses name's answer lists, read as the server
// reads it.
func courses(pl *pipeline.Pipeline, name string, now time.Time) (int, error) {
	n := 0
	err := pl.StatusFunc(context.Background(), projection.StatusQuery{Username: name, Now: now}, func(st []projection.Status, _ projection.Freshness) error {
		n = len(st)
		return nil
	})
	return n, err
}

func appliedOf(pl *pipeline.Pipeline) uint64 {
	var f projection.Freshness
	pl.Store(func(st *store.Store) (err error) { f, err = st.Freshness(); return err })
	return f.Applied
}

// TestFirstCatchUpBulkLoads: with BulkLoadEmpty, an empty projection (a new
// replica) catches up by a bulk load into a new file, swapped in: the same
// projection as one caught up batch by batch; the live consumer then follows
// the head; reopened, a projection that is not empty is not bulk-loaded
// again; a file a crash left mid-load is thrown away.
func TestFirstCatchUpBulkLoads(t *testing.T) {
	h := newHarness(t)
	msgs := append(h.gen.Catalog(), h.gen.History(4000)...)
	h.produce(msgs)
	ref, _, stopRef := h.start(filepath.Join(t.TempDir(), store.FileName))
	waitFor(t, "the reference", func() bool { return ref.Ready() == nil && appliedOf(ref) == uint64(len(msgs)) })
	want := digestOf(t, ref)
	if pr, ok := ref.RebuildProgress(); ok {
		t.Fatalf("bulk-loaded without BulkLoadEmpty: %+v", pr)
	}
	stopRef()

	path := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(path+".rebuild", []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	bulk := func(o *pipeline.Options) { o.BulkLoadEmpty = true }
	pl, reg, stop := h.start(path, bulk)
	waitFor(t, "ready", func() bool { return pl.Ready() == nil && appliedOf(pl) == uint64(len(msgs)) })
	// The replica's consumer metrics count what the load applied.
	if counted := counterValue(t, reg, "enrollstatus_events_total"); counted != float64(len(msgs)) {
		t.Fatalf("enrollstatus_events_total sums to %v after the first catch-up, want %d", counted, len(msgs))
	}
	pr, ok := pl.RebuildProgress()
	// Done once the load was written: no consumer followed the head in the
	// new file before the swap.
	if !ok || pr.Running || pr.Error != "" || pr.BulkLoaded != uint64(len(msgs)) || pr.Phase != pipeline.PhaseDone {
		t.Fatalf("first catch-up: %+v", pr)
	}
	if got := digestOf(t, pl); got != want {
		t.Fatalf("bulk-loaded projection %s, batch by batch %s", got, want)
	}
	if _, err := os.Stat(path + ".rebuild"); !os.IsNotExist(err) {
		t.Fatalf("the rebuild file is still there: %v", err)
	}
	more := h.gen.History(500)
	h.produce(more)
	waitFor(t, "the messages after the catch-up", func() bool { return appliedOf(pl) == uint64(len(msgs)+len(more)) })
	stop()

	// Every reader the first catch-up and the live consumer ran was
	// waited for by Close.
	if n := leak.KafkaReaders(50 * time.Millisecond); n > 0 {
		t.Fatalf("%d kafka-go reader goroutines left after Close", n)
	}

	again, _, _ := h.start(path, bulk)
	waitFor(t, "ready again", func() bool { return again.Ready() == nil })
	if pr, ok := again.RebuildProgress(); ok {
		t.Fatalf("bulk-loaded a projection that was not empty: %+v", pr)
	}
	if got := appliedOf(again); got != uint64(len(msgs)+len(more)) {
		t.Fatalf("reopened with %d messages applied, want %d", got, len(msgs)+len(more))
	}
}

// TestFarBehindCatchesUpByMerge: a replica that holds data and comes back
// far behind merges its projection with the backlog into a new file, which
// ends up as the projection of a replica that consumed everything batch by
// batch; a replica a little behind catches up batch by batch.
func TestFarBehindCatchesUpByMerge(t *testing.T) {
	h := newHarness(t)
	first := append(h.gen.Catalog(), h.gen.History(2000)...)
	h.produce(first)
	path := filepath.Join(t.TempDir(), store.FileName)
	merge := func(o *pipeline.Options) { o.MergeCatchUpMin = 1 }
	pl, _, stop := h.start(path, merge) // the backlog is all of it, but nothing is held
	waitFor(t, "the first part", func() bool { return pl.Ready() == nil && appliedOf(pl) == uint64(len(first)) })
	if pr, ok := pl.RebuildProgress(); ok {
		t.Fatalf("an empty projection merged without BulkLoadEmpty: %+v", pr)
	}
	stop()

	second := append(h.gen.Catalog(), h.gen.History(3000)...) // course metadata again, changed
	h.produce(second)
	total := uint64(len(first) + len(second))
	ref, _, stopRef := h.start(filepath.Join(t.TempDir(), store.FileName))
	waitFor(t, "the reference", func() bool { return ref.Ready() == nil && appliedOf(ref) == total })
	want := digestOf(t, ref)
	stopRef()

	pl, _, stop = h.start(path, merge)
	waitFor(t, "the merge", func() bool { return pl.Ready() == nil && appliedOf(pl) == total })
	pr, ok := pl.RebuildProgress()
	if !ok || pr.Running || pr.Error != "" || pr.Phase != pipeline.PhaseDone || pr.BulkLoaded != uint64(len(second)) {
		t.Fatalf("the catch-up was not a merge of the backlog: %+v (ok %v)", pr, ok)
	}
	if got := digestOf(t, pl); got != want {
		t.Fatalf("merged projection %s, batch by batch %s", got, want)
	}
	if _, err := os.Stat(path + ".rebuild"); !os.IsNotExist(err) {
		t.Fatalf("the rebuild file is still there: %v", err)
	}
	stop()

	// A backlog under a quarter of what the projection applied: batch by batch.
	h.produce(h.gen.History(100))
	pl, _, _ = h.start(path, merge)
	waitFor(t, "the short catch-up", func() bool { return pl.Ready() == nil && appliedOf(pl) == total+100 })
	if pr, ok := pl.RebuildProgress(); ok {
		t.Fatalf("merged for a backlog of 100 after %d: %+v", total, pr)
	}
}

// TestRunningReplicaFarBehindMerges: a running replica whose lag jumps past
// the merge threshold (a burst of events larger than a quarter of its
// history) stops its live consumer, merges the backlog into a new file, and
// follows the head on it; the result is the batch-by-batch projection, and
// the replica stays ready throughout.
func TestRunningReplicaFarBehindMerges(t *testing.T) {
	h := newHarness(t)
	first := append(h.gen.Catalog(), h.gen.History(400)...)
	h.produce(first)
	path := filepath.Join(t.TempDir(), store.FileName)
	pl, _, _ := h.start(path, func(o *pipeline.Options) {
		o.BulkLoadEmpty, o.MergeCatchUpMin, o.MergeCheckEvery = true, 1, 10*time.Millisecond
		// A slow live consumer, a commit per message: the check sees the
		// burst (ten times the history) long before batch by batch absorbs it.
		o.Consumer.BatchSize, o.Consumer.CatchUpBatchSize = 1, 0
	})
	waitFor(t, "the first part", func() bool { return pl.Ready() == nil && appliedOf(pl) == uint64(len(first)) })
	loaded, ok := pl.RebuildProgress()
	if !ok || loaded.BulkLoaded != uint64(len(first)) {
		t.Fatalf("the first catch-up was not a bulk load: %+v", loaded)
	}

	var notReady atomic.Int64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
				if pl.Ready() != nil {
					notReady.Add(1)
				}
			}
		}
	}()
	second := h.gen.History(6000)
	h.produce(second)
	total := uint64(len(first) + len(second))
	waitFor(t, "the burst", func() bool {
		pr, _ := pl.RebuildProgress()
		return appliedOf(pl) == total && !pr.Running // the progress is final just after the swap
	})
	close(stopWatch)
	<-watched
	pr, ok := pl.RebuildProgress()
	if !ok || !pr.Started.After(loaded.Started) || pr.Running || pr.Error != "" || pr.Phase != pipeline.PhaseDone || pr.BulkLoaded == 0 {
		t.Fatalf("the burst was not merged: started %v (the first catch-up %v), running %v, error %q, phase %q, %d bulk-loaded",
			pr.Started, loaded.Started, pr.Running, pr.Error, pr.Phase, pr.BulkLoaded)
	}
	if n := notReady.Load(); n > 0 {
		t.Errorf("not ready %d times during the merge", n)
	}

	ref, _, stopRef := h.start(filepath.Join(t.TempDir(), store.FileName))
	waitFor(t, "the reference", func() bool { return ref.Ready() == nil && appliedOf(ref) == total })
	if want, got := digestOf(t, ref), digestOf(t, pl); got != want {
		t.Fatalf("merged while running %s, batch by batch %s", got, want)
	}
	stopRef()
	more := h.gen.History(50)
	h.produce(more)
	waitFor(t, "the messages after the merge", func() bool { return appliedOf(pl) == total+uint64(len(more)) })
	t.Logf("merged %d of the burst's %d messages; the live consumer applied the rest", pr.BulkLoaded, len(second))
}

// TestStartRebuild: a rebuild started in the background refuses a second
// one, and Close waits for it to end (its context ends it) and to clean up.
func TestStartRebuild(t *testing.T) {
	h := newHarness(t)
	h.produce(append(h.gen.Catalog(), h.gen.History(4000)...))
	path := filepath.Join(t.TempDir(), store.FileName)
	pl, _, stop := h.start(path)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pl.StartRebuild(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := pl.StartRebuild(ctx, time.Time{}); err != pipeline.ErrRebuildRunning {
		t.Fatalf("a second rebuild: %v, want ErrRebuildRunning", err)
	}
	waitFor(t, "the rebuild's file", func() bool { _, err := os.Stat(path + ".rebuild"); return err == nil })
	cancel()
	stop() // Run returns, then Close
	pr, ok := pl.RebuildProgress()
	if !ok || pr.Running || pr.Finished.IsZero() {
		t.Fatalf("Close returned before the rebuild ended: %+v", pr)
	}
	if _, err := os.Stat(path + ".rebuild"); !os.IsNotExist(err) {
		t.Fatalf("Close returned before the rebuild removed its file: %v", err)
	}
}

// TestCloseWaitsForReaders: the readers of every consumer a pipeline ran,
// the live ones and an online rebuild's, are closed in the background, each
// in a long poll at the head when it stops, and Close waits for all of
// them. (Which consumer's closes are waited for last cannot be told from
// outside: a later consumer's long polls end later.)
func TestCloseWaitsForReaders(t *testing.T) {
	h := newHarness(t)
	h.produce(append(h.gen.Catalog(), h.gen.History(3000)...))
	pl, _, stop := h.start(filepath.Join(t.TempDir(), store.FileName), func(o *pipeline.Options) {
		o.Consumer.MaxWait = 2 * time.Second // long polls that outlast the rebuild
	})
	waitFor(t, "ready", func() bool { return pl.Ready() == nil })
	if err := pl.Rebuild(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	stop()
	if n := leak.KafkaReaders(50 * time.Millisecond); n > 0 {
		t.Fatalf("%d kafka-go reader goroutines left after Close", n)
	}
}

// TestRebuildWhileServing rebuilds a live projection from the topics while
// queries run, checks that no query ever saw a missing answer (the swap is
// atomic for readers), that the rebuilt projection equals the live one, and
// that consuming goes on after the swap.
func TestRebuildWhileServing(t *testing.T) {
	h := newHarness(t)
	msgs := append(h.gen.Catalog(), h.gen.History(4000)...)
	h.produce(msgs)
	path := filepath.Join(t.TempDir(), store.FileName)
	pl, reg, _ := h.start(path)
	waitFor(t, "ready", func() bool { return pl.Ready() == nil && appliedOf(pl) == uint64(len(msgs)) })
	before := digestOf(t, pl)

	// Learners whose answers must never vanish during the rebuild.
	ctx := context.Background()
	var watched []string
	want := map[string]int{}
	for id := 1; id <= 200 && len(watched) < 20; id++ {
		name := synth.Username(id)
		n, err := courses(pl, name, h.now)
		if err == nil && n > 0 {
			watched = append(watched, name)
			want[name] = n
		}
	}
	var queries, bad atomic.Int64
	stopQ := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stopQ:
					return
				default:
				}
				name := watched[i%len(watched)]
				n, err := courses(pl, name, h.now)
				queries.Add(1)
				if err != nil || n != want[name] {
					bad.Add(1)
				}
				// A client's pace, not a spin: two goroutines that never
				// block would take both cores from the rebuild (queries
				// share a read transaction and wait on no lock), and under
				// the race detector starve it for minutes.
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}

	if err := pl.Rebuild(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	close(stopQ)
	wg.Wait()
	if bad.Load() > 0 || queries.Load() < 100 {
		t.Fatalf("%d of %d queries during the rebuild answered wrong or failed", bad.Load(), queries.Load())
	}
	if after := digestOf(t, pl); after != before {
		t.Fatalf("rebuilt projection %s differs from the live one %s", after, before)
	}
	pr, _ := pl.RebuildProgress()
	if pr.Running || pr.Error != "" || pr.Applied != uint64(len(msgs)) {
		t.Fatalf("progress after rebuild: %+v", pr)
	}
	// Into its new, empty file, the rebuild bulk-loaded the history (the
	// digest check above holds the bulk load to Apply's result).
	if pr.BulkLoaded == 0 || pr.Phase != pipeline.PhaseFollow {
		t.Fatalf("the rebuild did not bulk-load: %+v", pr)
	}
	if got := counterValue(t, reg, "enrollstatus_rebuilds_total"); got != 1 {
		t.Fatalf("enrollstatus_rebuilds_total = %v, want 1", got)
	}
	if _, err := os.Stat(path + ".rebuild"); !os.IsNotExist(err) {
		t.Fatalf("the rebuild file is still there: %v", err)
	}

	// The live consumer goes on, on the new file.
	more := h.gen.History(500)
	h.produce(more)
	waitFor(t, "consuming after the swap", func() bool { return appliedOf(pl) == uint64(len(msgs)+len(more)) })
	if pl.Ready() != nil {
		t.Fatalf("unready after the swap: %v", pl.Ready())
	}
}

// counterValue returns a counter family in reg, summed over its series.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSnapshotRestoreResume takes an online snapshot, restores it into a
// new data directory, resumes consuming from the snapshot's offsets, and
// checks the result equals the live projection: a new replica that did not
// replay what the snapshot holds.
func TestSnapshotRestoreResume(t *testing.T) {
	h := newHarness(t)
	first := append(h.gen.Catalog(), h.gen.History(3000)...)
	h.produce(first)
	live, _, _ := h.start(filepath.Join(t.TempDir(), store.FileName))
	waitFor(t, "live ready", func() bool { return live.Ready() == nil && appliedOf(live) == uint64(len(first)) })

	var snap bytes.Buffer
	var announced int64
	if _, err := live.Snapshot(&snap, func(n int64) { announced = n }); err != nil {
		t.Fatal(err)
	}
	if announced != int64(snap.Len()) {
		t.Fatalf("snapshot announced %d bytes, wrote %d", announced, snap.Len())
	}
	replicaPath := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(replicaPath, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	second := h.gen.History(1000)
	h.produce(second)
	total := uint64(len(first) + len(second))
	replica, _, _ := h.start(replicaPath)
	waitFor(t, "both caught up", func() bool { return appliedOf(live) == total && appliedOf(replica) == total })
	if a, b := digestOf(t, live), digestOf(t, replica); a != b {
		t.Fatalf("restored replica %s differs from live %s", b, a)
	}
}

// TestTwoReplicasConverge runs two independent replicas on the same topics:
// each builds the full projection (no consumer group splits the partitions).
func TestTwoReplicasConverge(t *testing.T) {
	h := newHarness(t)
	msgs := append(h.gen.Catalog(), h.gen.History(3000)...)
	a, regA, _ := h.start(filepath.Join(t.TempDir(), store.FileName))
	b, _, _ := h.start(filepath.Join(t.TempDir(), store.FileName))
	h.produce(msgs[:1500])
	h.produce(msgs[1500:])
	n := uint64(len(msgs))
	waitFor(t, "both replicas complete", func() bool { return appliedOf(a) == n && appliedOf(b) == n })
	if da, db := digestOf(t, a), digestOf(t, b); da != db {
		t.Fatalf("replicas differ: %s vs %s", da, db)
	}
	// Metrics move: the applied counter equals what was produced.
	var applied float64
	mfs, _ := regA.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "enrollstatus_events_total" {
			for _, m := range mf.GetMetric() {
				applied += m.GetCounter().GetValue()
			}
		}
	}
	if applied != float64(n) {
		t.Fatalf("enrollstatus_events_total sums to %v, want %d", applied, n)
	}
}

// TestRetirementLeavesNoTrace retires a user, compacts online, and scans the
// projection file: no byte of the username remains.
func TestRetirementLeavesNoTrace(t *testing.T) {
	h := newHarness(t)
	const secret = "Zygmunt_Qx7_Privacy"
	enroll := func(course string) synth.Message {
		return synth.Message{Key: []byte(course), Value: []byte(`{"specversion":"1.0","type":"org.openedx.learning.course.enrollment.created.v1","id":"x","time":"2026-11-01T10:00:00Z","data":{"enrollment":{"user":{"id":424242,"is_active":true,"pii":{"username":"` + secret + `","email":"z@example.com","name":"Z"}},"course":{"course_key":"` + course + `","display_name":"C"},"mode":"audit","is_active":true,"creation_date":"2026-11-01T10:00:00Z"}}}`)}
	}
	msgs := append(h.gen.Catalog(), h.gen.History(2000)...)
	for i := range 30 {
		msgs = append(msgs, enroll(h.gen.Courses[i%len(h.gen.Courses)].Key))
	}
	h.produce(msgs)
	path := filepath.Join(t.TempDir(), store.FileName)
	pl, _, _ := h.start(path)
	waitFor(t, "ingest", func() bool { return appliedOf(pl) == uint64(len(msgs)) })
	if n, _ := courses(pl, secret, h.now); n == 0 {
		t.Fatal("the user was not projected; the test proves nothing")
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the username is not in the file before retirement; the scan proves nothing")
	}

	h.produce([]synth.Message{{Key: []byte("u"), Value: []byte(`{"specversion":"1.0","type":"enrollstatus.user.retired.v1","id":"r","time":"2026-11-02T10:00:00Z","data":{"user_id":424242,"username":"` + secret + `"}}`)}})
	waitFor(t, "retirement", func() bool { return appliedOf(pl) == uint64(len(msgs)+1) })
	if _, _, err := pl.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte(strings.ToLower(secret))) {
		t.Fatal("the retired username is still in the projection file after compaction")
	}
	if n, _ := courses(pl, secret, h.now); n != 0 {
		t.Fatalf("the retired user still answers %d courses", n)
	}
	// Consuming continues on the compacted file.
	h.produce(h.gen.History(100))
	waitFor(t, "consuming after compaction", func() bool { return appliedOf(pl) == uint64(len(msgs)+101) })
}

// TestShutdownMidIngestLosesNothing stops a pipeline in the middle of
// ingest, several times, restarts it, and checks every message was applied
// exactly once and the result equals an uninterrupted replica.
func TestShutdownMidIngestLosesNothing(t *testing.T) {
	h := newHarness(t)
	size := 15000
	if raceDetector {
		size = 5000 // without it, so few would be read before the first stop
	}
	msgs := append(h.gen.Catalog(), h.gen.History(size)...)
	h.produce(msgs)
	n := uint64(len(msgs))
	path := filepath.Join(t.TempDir(), store.FileName)
	stops := 0
	for {
		pl, _, stop := h.start(path)
		start := appliedOf(pl)
		if stops < 3 { // stop as soon as something was applied
			waitFor(t, "progress", func() bool { return appliedOf(pl) > start || appliedOf(pl) == n })
		} else { // enough stops: let it finish
			waitFor(t, "the end of ingest", func() bool { return appliedOf(pl) == n })
		}
		stop()
		if st, err := store.Open(path, store.DefaultOptions()); err == nil {
			f, _ := st.Freshness()
			st.Close()
			if f.Applied == n {
				break
			}
		}
		stops++
	}
	if stops == 0 {
		t.Fatal("no stop landed mid-ingest; the test proves nothing")
	}
	clean, _, _ := h.start(filepath.Join(t.TempDir(), store.FileName))
	waitFor(t, "clean replica", func() bool { return appliedOf(clean) == n })
	resumed, _, _ := h.start(path)
	if got := appliedOf(resumed); got != n {
		t.Fatalf("applied %d messages over %d stops, want exactly %d", got, stops, n)
	}
	if a, b := digestOf(t, resumed), digestOf(t, clean); a != b {
		t.Fatalf("after %d stops the projection differs from an uninterrupted one", stops)
	}
}
