package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type ingestReport struct {
	Machine  machineInfo    `json:"machine"`
	Messages int64          `json:"messages"`
	Produce  float64        `json:"produce_seconds"`
	Raw      []workerResult `json:"raw"`
	E2E      []workerResult `json:"e2e"`
	Decode   []workerResult `json:"decode"` // the consumer with its batches discarded
	Sweep    []workerResult `json:"batch_sweep"`
	// WritesSweep varies the consumer's CatchUpMaxWrites at the defaults.
	WritesSweep []workerResult `json:"catch_up_writes_sweep,omitempty"`
	BestRaw     workerResult   `json:"best_raw"`
	BestE2E     workerResult   `json:"best_e2e"`
	Ratio       float64        `json:"ratio_e2e_to_raw"`
	// Replica and ReplicaBatches are `enrollstatus serve` on an empty data
	// directory until ready: its first catch-up by bulk load (the default)
	// and batch by batch (--bulk-load-empty=false).
	Replica        []workerResult `json:"new_replica,omitempty"`
	ReplicaBatches []workerResult `json:"new_replica_batches,omitempty"`
	// Outage is a replica back from an outage: a projection that holds
	// data, far behind the head.
	Outage    *outageReport `json:"outage,omitempty"`
	Seconds   float64       `json:"seconds"`
	Partition int           `json:"partitions_per_topic"`
}

// ingestSetup is the broker, filled with the same data for every worker.
type ingestSetup struct {
	broker   *benchBroker
	expect   int64
	self     string
	cache    string
	produced time.Duration
	// profileDir, when set, receives a CPU profile of every worker.
	profileDir string
	// workerArgs are extra flags of every end-to-end worker.
	workerArgs []string
}

func newIngestSetup(ctx context.Context, self, cache string, partitions, users, courses, events int, log io.Writer) (*ingestSetup, error) {
	b, err := startBroker(partitions)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := b.produceHistory(ctx, 7, users, courses, events, log); err != nil {
		b.Close()
		return nil, err
	}
	expect, err := endOffsets(ctx, b.Addr, b.Topics)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &ingestSetup{broker: b, expect: expect, self: self, cache: cache, produced: time.Since(start)}, nil
}

// worker runs one ingest worker in a child process and returns its result.
// batch > 0 sets the batch size and turns catch-up batches off (the sweep);
// 0 keeps the consumer's defaults. extra are more worker flags.
func (s *ingestSetup) worker(mode string, batch int, log io.Writer, extra ...string) (workerResult, error) {
	args := []string{"ingest-worker", "-mode", mode, "-brokers", s.broker.Addr, "-topics", strings.Join(s.broker.Topics, ","),
		"-expect", strconv.FormatInt(s.expect, 10), "-dir", filepath.Join(s.cache, "ingest-work")}
	if batch > 0 {
		args = append(args, "-batch-size", strconv.Itoa(batch), "-catch-up-batch-size", "0")
	}
	args = append(args, extra...)
	if mode == "e2e" || mode == "decode" {
		args = append(args, s.workerArgs...)
	}
	if s.profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(s.profileDir, fmt.Sprintf("%s-%d.pprof", mode, batch)),
			"-memprofile", filepath.Join(s.profileDir, fmt.Sprintf("%s-%d.mem.pprof", mode, batch)))
	}
	cmd := exec.Command(s.self, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	cmd.SysProcAttr = childAttr()
	if err := cmd.Run(); err != nil {
		return workerResult{}, fmt.Errorf("ingest-worker %s: %w", mode, err)
	}
	var r workerResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("ingest-worker output %q: %w", out.String(), err)
	}
	fmt.Fprintf(log, "  %-6s batch %5d: %d messages in %.2fs = %.0f/s, peak RssAnon %d MiB\n", r.Mode, r.BatchSize,
		r.Messages, r.Seconds, r.Rate, r.PeakAnon>>20)
	return r, nil
}

func cmdIngest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	self := fs.String("self", os.Args[0], "enrollbench binary (for the workers)")
	cache := fs.String("cache", ".cache/bench", "cache directory")
	events := fs.Int("events", 500_000, "events of history to ingest")
	users := fs.Int("users", 100_000, "synthetic users")
	courses := fs.Int("courses", 500, "synthetic courses")
	partitions := fs.Int("partitions", 3, "partitions per topic")
	reps := fs.Int("reps", 2, "raw/e2e repetitions, interleaved (the best of each is kept)")
	sweep := fs.String("batch-sizes", "100,250,500,1000,2000,5000,10000,20000", "batch sizes of the sweep (catch-up batches off); empty: none")
	writesSweep := fs.String("catch-up-writes", "4096,8192,16384,32768", "catch-up max writes of the second sweep (defaults otherwise); empty: none")
	out := fs.String("out", ".cache/bench/results/ingest.json", "results file")
	profiles := fs.String("profiles", "", "directory for CPU profiles of the workers")
	workerArgs := fs.String("worker-args", "", "extra flags of the end-to-end workers, space-separated (e.g. -catch-up-max-writes 8192)")
	bin := fs.String("bin", ".cache/bench/bin/enrollstatus", "enrollstatus binary (for the new replica's catch-up); empty: not measured")
	outage := fs.Bool("outage", true, "also time a replica back from an outage (with -bin): a projection of half the history catching up with the other half, by merge and batch by batch, on a broker of its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profiles != "" { // made now, not after the broker is filled
		if err := os.MkdirAll(*profiles, 0o750); err != nil {
			return err
		}
	}
	batchSizes, err := intList(*sweep)
	if err != nil {
		return fmt.Errorf("-batch-sizes: %w", err)
	}
	maxWrites, err := intList(*writesSweep)
	if err != nil {
		return fmt.Errorf("-catch-up-writes: %w", err)
	}
	began := time.Now()
	ctx := baseCtx
	s, err := newIngestSetup(ctx, *self, *cache, *partitions, *users, *courses, *events, stderr)
	if err != nil {
		return err
	}
	defer s.broker.Close()
	s.profileDir = *profiles
	s.workerArgs = strings.Fields(*workerArgs)
	rep := ingestReport{Machine: describeMachine(), Messages: s.expect, Produce: s.produced.Seconds(), Partition: *partitions}
	for range *reps {
		r, err := s.worker("raw", 0, stderr)
		if err != nil {
			return err
		}
		rep.Raw = append(rep.Raw, r)
		e, err := s.worker("e2e", 0, stderr)
		if err != nil {
			return err
		}
		rep.E2E = append(rep.E2E, e)
		d, err := s.worker("decode", 0, stderr)
		if err != nil {
			return err
		}
		rep.Decode = append(rep.Decode, d)
		if *bin != "" {
			for _, bulk := range []bool{true, false} {
				r, err := s.newReplica(*bin, bulk)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "  serve, empty data dir, bulk-load-empty=%v: %d messages in %.2fs = %.0f/s, peak RssAnon %d MiB\n",
					bulk, r.Messages, r.Seconds, r.Rate, r.PeakAnon>>20)
				if bulk {
					rep.Replica = append(rep.Replica, r)
				} else {
					rep.ReplicaBatches = append(rep.ReplicaBatches, r)
				}
			}
		}
	}
	for _, n := range batchSizes {
		r, err := s.worker("e2e", n, stderr)
		if err != nil {
			return err
		}
		rep.Sweep = append(rep.Sweep, r)
	}
	for _, n := range maxWrites {
		r, err := s.worker("e2e", 0, stderr, "-catch-up-max-writes", strconv.Itoa(n))
		if err != nil {
			return err
		}
		rep.WritesSweep = append(rep.WritesSweep, r)
	}
	if *bin != "" && *outage {
		if rep.Outage, err = outageRun(ctx, *bin, *self, *cache, *partitions, *users, *courses, *events, *reps, stderr); err != nil {
			return fmt.Errorf("outage: %w", err)
		}
	}
	rep.BestRaw, rep.BestE2E = bestRate(rep.Raw), bestRate(rep.E2E)
	rep.Ratio = rep.BestE2E.Rate / rep.BestRaw.Rate
	rep.Seconds = time.Since(began).Seconds()
	if err := writeJSON(*out, rep); err != nil {
		return err
	}
	fmt.Fprint(stdout, ingestMarkdown(rep))
	return nil
}

// intList parses a comma-separated list of integers; empty: none.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func bestRate(rs []workerResult) workerResult {
	var b workerResult
	for _, r := range rs {
		if r.Rate > b.Rate {
			b = r
		}
	}
	return b
}

func ingestMarkdown(rep ingestReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Ingest (%s)\n\n", rep.Machine.Summary())
	fmt.Fprintf(&b, "%d messages of internal/synth history (about 70%% completions) in 5 topics × %d partitions of a kfake broker on loopback TCP; best of %d interleaved runs, each in a fresh process.\n\n",
		rep.Messages, rep.Partition, len(rep.Raw))
	b.WriteString("| what | messages/s | seconds | peak RssAnon MiB |\n|---|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| raw fetch (same kafka-go readers, discarding) | %.0f | %.2f | %d |\n", rep.BestRaw.Rate, rep.BestRaw.Seconds, rep.BestRaw.PeakAnon>>20)
	fmt.Fprintf(&b, "| end to end (consumer + store, defaults: batch %d, catch-up batches up to %d messages / %d writes) | %.0f | %.2f | %d |\n",
		rep.BestE2E.BatchSize, rep.BestE2E.CatchUpBatchSize, rep.BestE2E.CatchUpMaxWrites, rep.BestE2E.Rate, rep.BestE2E.Seconds, rep.BestE2E.PeakAnon>>20)
	fmt.Fprintf(&b, "| **ratio end to end / raw** | **%.2f×** | | |\n", rep.Ratio)
	if d := bestRate(rep.Decode); d.Rate > 0 {
		fmt.Fprintf(&b, "| the same consumer, batches discarded (no store: reading, decoding, batching) | %.0f | %.2f | %d |\n", d.Rate, d.Seconds, d.PeakAnon>>20)
		fmt.Fprintf(&b, "| ratio no store / raw | %.2f× | | |\n", d.Rate/rep.BestRaw.Rate)
	}
	b.WriteString("\n")
	if len(rep.Replica) > 0 {
		bulk, batches := bestRate(rep.Replica), bestRate(rep.ReplicaBatches)
		b.WriteString("A new replica: `enrollstatus serve` on an empty data directory, from its start until `/readyz` answers 200 (caught up with the head as it was at its start), same broker and data, interleaved with the runs above:\n\n")
		b.WriteString("| first catch-up | messages/s | seconds | peak RssAnon MiB | ratio to raw |\n|---|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| bulk load (`--bulk-load-empty`, the default) | %.0f | %.2f | %d | **%.2f×** |\n", bulk.Rate, bulk.Seconds, bulk.PeakAnon>>20, bulk.Rate/rep.BestRaw.Rate)
		fmt.Fprintf(&b, "| batch by batch (`--bulk-load-empty=false`) | %.0f | %.2f | %d | %.2f× |\n\n", batches.Rate, batches.Seconds, batches.PeakAnon>>20, batches.Rate/rep.BestRaw.Rate)
	}
	if o := rep.Outage; o != nil {
		raw, merge, batches := bestRate(o.Raw), bestRate(o.Merge), bestRate(o.Batches)
		fmt.Fprintf(&b, "A replica back from an outage: `enrollstatus serve` on a projection of the first %d messages (built by `enrollstatus rebuild`), %d messages behind the head (the same users' next events, the catalog again), from its start until `/readyz` answers 200; a broker of its own, whose raw fetch (all %d messages) is the baseline; best of %d interleaved runs:\n\n",
			o.Held, o.Backlog, o.Held+o.Backlog, len(o.Raw))
		b.WriteString("| catch-up | messages/s | seconds | peak RssAnon MiB | ratio to raw |\n|---|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| raw fetch (same kafka-go readers, discarding) | %.0f | %.2f | %d | 1× |\n", raw.Rate, raw.Seconds, raw.PeakAnon>>20)
		fmt.Fprintf(&b, "| merge (`--merge-catch-up-min`, the default) | %.0f | %.2f | %d | **%.2f×** |\n", merge.Rate, merge.Seconds, merge.PeakAnon>>20, merge.Rate/raw.Rate)
		fmt.Fprintf(&b, "| batch by batch (`--merge-catch-up-min=0`) | %.0f | %.2f | %d | %.2f× |\n\n", batches.Rate, batches.Seconds, batches.PeakAnon>>20, batches.Rate/raw.Rate)
	}
	b.WriteString("Batch size sweep (end to end, catch-up batches off, one run each):\n\n| batch size | messages/s | peak RssAnon MiB |\n|---:|---:|---:|\n")
	for _, r := range rep.Sweep {
		fmt.Fprintf(&b, "| %d | %.0f | %d |\n", r.BatchSize, r.Rate, r.PeakAnon>>20)
	}
	b.WriteString("\n")
	if len(rep.WritesSweep) > 0 {
		b.WriteString("Catch-up max writes sweep (end to end, other settings default, one run each):\n\n| catch-up max writes | messages/s | peak RssAnon MiB |\n|---:|---:|---:|\n")
		for _, r := range rep.WritesSweep {
			fmt.Fprintf(&b, "| %d | %.0f | %d |\n", r.CatchUpMaxWrites, r.Rate, r.PeakAnon>>20)
		}
		b.WriteString("\n")
	}
	return b.String()
}

type rebuildReport struct {
	Machine    machineInfo   `json:"machine"`
	Messages   int64         `json:"messages"`
	Reps       int           `json:"repetitions"`
	Raw        workerResult  `json:"raw"`
	Rebuild    rebuildResult `json:"rebuild"`
	RawAll     []float64     `json:"raw_seconds_all"`
	RebuildAll []float64     `json:"rebuild_seconds_all"`
	Ratio      float64       `json:"ratio_rebuild_to_raw_time"`
	// Before is the best rebuild by -before-bin, if given.
	Before    *rebuildResult `json:"before,omitempty"`
	BeforeAll []float64      `json:"before_seconds_all,omitempty"`
	Seconds   float64        `json:"seconds"`
}

type rebuildResult struct {
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"messages_per_second"`
	PeakAnon  int64   `json:"peak_rss_anon_bytes"`
	FileBytes int64   `json:"file_bytes"`
}

// newReplica times `enrollstatus serve` on an empty data directory from its
// start until its /readyz answers 200, with its first catch-up by bulk load
// or batch by batch.
func (s *ingestSetup) newReplica(bin string, bulk bool) (workerResult, error) {
	dir := filepath.Join(s.cache, "replica-work")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	logName := "new-replica-batches.log"
	if bulk {
		logName = "new-replica-bulk.log"
	}
	r, err := s.serveUntilReady(bin, dir, logName, s.expect, "--bulk-load-empty="+strconv.FormatBool(bulk))
	r.Mode = "new-replica"
	return r, err
}

// serveUntilReady times `enrollstatus serve` on the data directory dir,
// consuming the setup's broker, from its start until its /readyz answers
// 200, and reports messages (what it had to catch up) per second.
func (s *ingestSetup) serveUntilReady(bin, dir, logName string, messages int64, flags ...string) (workerResult, error) {
	r := workerResult{Messages: messages}
	addr, err := freePort()
	if err != nil {
		return r, err
	}
	start := time.Now()
	c, err := startChild(filepath.Join(s.cache, "logs", logName), bin, append([]string{"serve", "--brokers", s.broker.Addr,
		"--topics", strings.Join(s.broker.Topics, ","), "--data-dir", dir, "--http-addr", addr,
		"--jwt-secret", benchSecret, "--log-level", "info"}, flags...)...)
	if err != nil {
		return r, err
	}
	defer c.stop()
	rss := startRSSSampler(c.pid(), 100*time.Millisecond)
	err = waitHTTP(c, "http://"+addr+"/readyz", 10*time.Minute)
	r.Seconds = time.Since(start).Seconds()
	r.PeakAnon = rss.stop().PeakAnon
	if err != nil {
		return r, err
	}
	r.Rate = float64(messages) / r.Seconds
	return r, nil
}

// rebuildOnce times one `enrollstatus rebuild` into a new data directory.
func (s *ingestSetup) rebuildOnce(bin string) (rebuildResult, error) {
	var r rebuildResult
	dir := filepath.Join(s.cache, "rebuild-work")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	start := time.Now()
	c, err := startChild(filepath.Join(s.cache, "logs", "rebuild.log"), bin, "rebuild", "--brokers", s.broker.Addr,
		"--topics", strings.Join(s.broker.Topics, ","), "--data-dir", dir, "--log-level", "info")
	if err != nil {
		return r, err
	}
	rss := startRSSSampler(c.pid(), 100*time.Millisecond)
	err = <-c.done
	r.Seconds = time.Since(start).Seconds()
	r.PeakAnon = rss.stop().PeakAnon
	if err != nil {
		return r, fmt.Errorf("enrollstatus rebuild: %w (see %s)", err, c.log)
	}
	r.Rate = float64(s.expect) / r.Seconds
	if fi, err := os.Stat(filepath.Join(dir, "projection.db")); err == nil {
		r.FileBytes = fi.Size()
	}
	return r, nil
}

func joinSeconds(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, ", ")
}

// cmdRebuild times `enrollstatus rebuild` (offline, into a new data
// directory) of N messages against the raw fetch time of the same messages.
func cmdRebuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	self := fs.String("self", os.Args[0], "enrollbench binary (for the raw worker)")
	bin := fs.String("bin", ".cache/bench/bin/enrollstatus", "enrollstatus binary")
	cache := fs.String("cache", ".cache/bench", "cache directory")
	events := fs.Int("events", 3_000_000, "events to rebuild from")
	users := fs.Int("users", 300_000, "synthetic users")
	courses := fs.Int("courses", 1000, "synthetic courses")
	partitions := fs.Int("partitions", 3, "partitions per topic")
	out := fs.String("out", ".cache/bench/results/rebuild.json", "results file")
	profiles := fs.String("profiles", "", "directory for profiles of one more rebuild, in a worker (not timed)")
	reps := fs.Int("reps", 2, "interleaved repetitions of raw fetch and rebuild; the best of each is kept")
	before := fs.String("before-bin", "", "another enrollstatus binary (the code before a change), timed interleaved with the others for a before/after in the same run, the two binaries taking turns going first; empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profiles != "" { // made now, not after the broker is filled
		if err := os.MkdirAll(*profiles, 0o750); err != nil {
			return err
		}
	}
	began := time.Now()
	ctx := baseCtx
	s, err := newIngestSetup(ctx, *self, *cache, *partitions, *users, *courses, *events, stderr)
	if err != nil {
		return err
	}
	defer s.broker.Close()
	if *profiles != "" {
		s.profileDir = *profiles
		if _, err := s.worker("rebuild", 0, stderr); err != nil {
			return err
		}
		s.profileDir = ""
	}
	rep := rebuildReport{Machine: describeMachine(), Messages: s.expect, Reps: *reps}
	// Interleaved repetitions, the best of each kept: the first reads of a
	// freshly filled broker are slower than later ones, and other tenants'
	// bursts hit one repetition, not all.
	for rep.RawAll = nil; len(rep.RawAll) < *reps; {
		raw, err := s.worker("raw", 0, stderr)
		if err != nil {
			return err
		}
		rep.RawAll = append(rep.RawAll, raw.Seconds)
		if rep.Raw.Seconds == 0 || raw.Seconds < rep.Raw.Seconds {
			rep.Raw = raw
		}
		// With -before-bin, the two binaries take turns going first: the
		// second of a pair ran measurably faster (by 3-8%) in either order.
		bins := []string{*bin}
		if *before != "" {
			bins = append(bins, *before)
			if len(rep.RawAll)%2 == 0 {
				bins[0], bins[1] = bins[1], bins[0]
			}
		}
		for _, b := range bins {
			rb, err := s.rebuildOnce(b)
			if err != nil {
				return err
			}
			if b == *bin {
				fmt.Fprintf(stderr, "  rebuild: %.2fs = %.0f/s, peak RssAnon %d MiB\n", rb.Seconds, rb.Rate, rb.PeakAnon>>20)
				rep.RebuildAll = append(rep.RebuildAll, rb.Seconds)
				if rep.Rebuild.Seconds == 0 || rb.Seconds < rep.Rebuild.Seconds {
					rep.Rebuild = rb
				}
				continue
			}
			fmt.Fprintf(stderr, "  rebuild by -before-bin: %.2fs = %.0f/s, peak RssAnon %d MiB\n", rb.Seconds, rb.Rate, rb.PeakAnon>>20)
			rep.BeforeAll = append(rep.BeforeAll, rb.Seconds)
			if rep.Before == nil || rb.Seconds < rep.Before.Seconds {
				rep.Before = &rb
			}
		}
	}
	rep.Ratio = rep.Rebuild.Seconds / rep.Raw.Seconds
	rep.Seconds = time.Since(began).Seconds()
	fmt.Fprintf(stderr, "  best rebuild %.2fs / best raw %.2fs = %.2f\n", rep.Rebuild.Seconds, rep.Raw.Seconds, rep.Ratio)
	if err := writeJSON(*out, rep); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Rebuild (%s)\n\n", rep.Machine.Summary())
	fmt.Fprintf(&b, "`enrollstatus rebuild --brokers … --data-dir NEW` (offline) of %d messages, wall time of the process, against the raw fetch time of the same messages by the same readers; %d interleaved repetitions (raw, rebuild, raw, …), the best of each (all: raw %s s, rebuild %s s).\n\n",
		rep.Messages, rep.Reps, joinSeconds(rep.RawAll), joinSeconds(rep.RebuildAll))
	b.WriteString("| what | seconds | messages/s | peak RssAnon MiB |\n|---|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| raw fetch | %.2f | %.0f | %d |\n", rep.Raw.Seconds, rep.Raw.Rate, rep.Raw.PeakAnon>>20)
	fmt.Fprintf(&b, "| rebuild | %.2f | %.0f | %d |\n", rep.Rebuild.Seconds, rep.Rebuild.Rate, rep.Rebuild.PeakAnon>>20)
	fmt.Fprintf(&b, "| **ratio rebuild / raw time** | **%.2f×** | | |\n", rep.Ratio)
	if rep.Before != nil {
		fmt.Fprintf(&b, "| rebuild by `-before-bin` (all: %s s) | %.2f | %.0f | %d |\n", joinSeconds(rep.BeforeAll),
			rep.Before.Seconds, rep.Before.Rate, rep.Before.PeakAnon>>20)
		fmt.Fprintf(&b, "| ratio of `-before-bin` / raw time | %.2f× | | |\n", rep.Before.Seconds/rep.Raw.Seconds)
	}
	fmt.Fprintf(&b, "\nRebuilt file: %d MiB.\n\n", rep.Rebuild.FileBytes>>20)
	fmt.Fprint(stdout, b.String())
	return nil
}

// outageReport is a replica back from an outage (outageRun).
type outageReport struct {
	Held    int64          `json:"messages_held"`   // in the projection at its start
	Backlog int64          `json:"messages_behind"` // between it and the head
	Raw     []workerResult `json:"raw"`             // the raw fetch of the whole broker
	Merge   []workerResult `json:"merge"`
	Batches []workerResult `json:"batches"`
}

// outageRun builds, on a broker of its own, a projection of half the
// history (the first events/2 messages, by `enrollstatus rebuild`), produces
// the other half (the same users' next events), and times, reps times,
// interleaved: the raw fetch of the whole broker, and `enrollstatus serve`
// on a copy of the projection until ready, catching up by merge and batch
// by batch. The rates are of the backlog.
func outageRun(ctx context.Context, bin, self, cache string, partitions, users, courses, events, reps int, log io.Writer) (*outageReport, error) {
	b, err := startBroker(partitions)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	fmt.Fprintln(log, "outage: the first half of the history, a projection of it, then the second half")
	if _, err := b.produceHistory(ctx, 7, users, courses, events/2, log); err != nil {
		return nil, err
	}
	held, err := endOffsets(ctx, b.Addr, b.Topics)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(cache, "outage-base")
	os.RemoveAll(base)
	defer os.RemoveAll(base)
	c, err := startChild(filepath.Join(cache, "logs", "outage-base.log"), bin, "rebuild", "--brokers", b.Addr,
		"--topics", strings.Join(b.Topics, ","), "--data-dir", base, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	if err := <-c.done; err != nil {
		return nil, fmt.Errorf("enrollstatus rebuild: %w (see %s)", err, c.log)
	}
	if _, err := b.produceHistory(ctx, 8, users, courses, events-events/2, log); err != nil {
		return nil, err
	}
	total, err := endOffsets(ctx, b.Addr, b.Topics)
	if err != nil {
		return nil, err
	}
	o := &outageReport{Held: held, Backlog: total - held}
	s := &ingestSetup{broker: b, expect: total, self: self, cache: cache}
	for range reps {
		r, err := s.worker("raw", 0, log)
		if err != nil {
			return nil, err
		}
		o.Raw = append(o.Raw, r)
		for _, min := range []int64{100_000, 0} {
			r, err := s.backFromOutage(bin, base, o.Backlog, min)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "  serve, %d messages behind, merge-catch-up-min=%d: %.2fs = %.0f/s, peak RssAnon %d MiB\n",
				o.Backlog, min, r.Seconds, r.Rate, r.PeakAnon>>20)
			if min > 0 {
				o.Merge = append(o.Merge, r)
			} else {
				o.Batches = append(o.Batches, r)
			}
		}
	}
	return o, nil
}

// backFromOutage times `enrollstatus serve` on a copy of the projection in
// base, backlog messages behind, from its start until its /readyz answers
// 200, with --merge-catch-up-min=min.
func (s *ingestSetup) backFromOutage(bin, base string, backlog, min int64) (workerResult, error) {
	dir := filepath.Join(s.cache, "outage-work")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	// As an operator brings back an old snapshot: enrollstatus restore.
	if out, err := exec.Command(bin, "restore", "--from", filepath.Join(base, "projection.db"), "--data-dir", dir).CombinedOutput(); err != nil {
		return workerResult{}, fmt.Errorf("enrollstatus restore: %w\n%s", err, out)
	}
	r, err := s.serveUntilReady(bin, dir, fmt.Sprintf("outage-merge-min-%d.log", min), backlog,
		"--merge-catch-up-min="+strconv.FormatInt(min, 10))
	r.Mode = "outage"
	return r, err
}
