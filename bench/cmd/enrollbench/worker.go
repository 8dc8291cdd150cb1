package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/memlimit"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/store"
)

// workerResult is what one ingest worker measured, printed as JSON.
type workerResult struct {
	Mode      string `json:"mode"`
	BatchSize int    `json:"batch_size,omitempty"`
	// CatchUpBatchSize is the consumer's batch bound while behind the head.
	CatchUpBatchSize int     `json:"catch_up_batch_size,omitempty"`
	CatchUpMaxWrites int     `json:"catch_up_max_writes,omitempty"`
	Messages         int64   `json:"messages"`
	Seconds          float64 `json:"seconds"`
	Rate             float64 `json:"messages_per_second"`
	PeakAnon         int64   `json:"peak_rss_anon_bytes"`
	PeakRSS          int64   `json:"peak_rss_bytes"`
	FileBytes        int64   `json:"file_bytes,omitempty"`
	Users            int     `json:"-"`
	GCCPUShare       float64 `json:"-"`
}

// cmdIngestWorker consumes every message of the topics once, either
// discarding them (raw: the fetch rate of the consumer's own kafka-go
// reader configuration), or into a new projection through the consumer and
// the store (e2e), or through the consumer into a sink that discards its
// batches (decode), and prints what it measured.
func cmdIngestWorker(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest-worker", flag.ContinueOnError)
	mode := fs.String("mode", "e2e", "raw, e2e, decode (e2e with batches discarded: no store) or rebuild (what enrollstatus rebuild runs, in this process: to profile it)")
	brokers := fs.String("brokers", "", "broker address")
	topics := fs.String("topics", "", "topics, comma-separated")
	expect := fs.Int64("expect", 0, "messages in the topics (the sum of end offsets)")
	batch := fs.Int("batch-size", consumer.DefaultConfig().BatchSize, "consumer batch size (e2e)")
	catchUp := fs.Int("catch-up-batch-size", consumer.DefaultConfig().CatchUpBatchSize, "consumer catch-up batch size (e2e); 0: off")
	catchUpWrites := fs.Int("catch-up-max-writes", consumer.DefaultConfig().CatchUpMaxWrites, "consumer catch-up batch bound in records to write (e2e)")
	dir := fs.String("dir", "", "directory for the projection (e2e)")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run here")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations over the run) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *memProfile != "" {
		stop := watchPeakHeap(*memProfile + ".peak")
		defer stop()
	}
	if *expect <= 0 || *brokers == "" || *topics == "" {
		return errors.New("need -brokers, -topics and -expect")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The service's memory limit (enrollstatus serve and rebuild set it).
	memlimit.Set(memlimit.DefaultMiB, os.Getenv)
	rss := startRSSSampler(os.Getpid(), 100*time.Millisecond)
	cc := consumer.DefaultConfig()
	cc.Brokers, cc.Topics, cc.BatchSize = []string{*brokers}, strings.Split(*topics, ","), *batch
	cc.CatchUpBatchSize, cc.CatchUpMaxWrites = *catchUp, *catchUpWrites
	if cc.CatchUpBatchSize != 0 && cc.CatchUpBatchSize < cc.BatchSize {
		cc.CatchUpBatchSize = cc.BatchSize
	}
	res := workerResult{Mode: *mode, Messages: *expect}
	start := time.Now()
	var err error
	switch *mode {
	case "raw":
		err = rawFetch(ctx, cc, *expect)
	case "rebuild":
		res.FileBytes, err = replayIngest(ctx, cc, *dir)
	case "e2e", "decode":
		res.BatchSize = *batch
		res.CatchUpBatchSize, res.CatchUpMaxWrites = cc.CatchUpBatchSize, cc.CatchUpMaxWrites
		res.FileBytes, err = e2eIngest(ctx, cc, *dir, *expect, *mode == "decode")
		start = e2eStart
	default:
		err = fmt.Errorf("mode %q: want raw, e2e, decode or rebuild", *mode)
	}
	if err != nil {
		return err
	}
	res.Seconds = e2eEnd(start)
	res.Rate = float64(*expect) / res.Seconds
	m := rss.stop()
	res.PeakAnon, res.PeakRSS = m.PeakAnon, m.PeakRSS
	return json.NewEncoder(stdout).Encode(res)
}

var (
	e2eStart time.Time
	e2eDone  time.Time
)

func e2eEnd(start time.Time) float64 {
	end := e2eDone
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(start).Seconds()
}

// rawFetch reads every partition to its end with the consumer's reader
// settings and discards the messages.
func rawFetch(ctx context.Context, cc consumer.Config, expect int64) error {
	client := &kafka.Client{Addr: kafka.TCP(cc.Brokers...), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: cc.Topics})
	if err != nil {
		return err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return err
	}
	e2eStart = time.Now()
	var wg sync.WaitGroup
	var got atomic.Int64
	errs := make(chan error, 64)
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.LastOffset == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := kafka.NewReader(cc.ReaderConfig(topic, p.Partition))
				defer r.Close()
				if err := r.SetOffset(kafka.FirstOffset); err != nil {
					errs <- err
					return
				}
				for {
					msg, err := r.FetchMessage(ctx)
					if err != nil {
						errs <- err
						return
					}
					got.Add(1)
					if msg.Offset+1 >= p.LastOffset {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	e2eDone = time.Now()
	close(errs)
	for err := range errs {
		return err
	}
	if got.Load() != expect {
		return fmt.Errorf("raw fetch read %d messages, want %d", got.Load(), expect)
	}
	return nil
}

// countingSink is a sink (the service's store sink, or discardSink) noting
// when the last expected message was committed.
type countingSink struct {
	consumer.Sink
	applied atomic.Int64
	expect  int64
	done    chan struct{}
	once    sync.Once
}

func (s *countingSink) Apply(b consumer.Batch) (int, error) {
	n, err := s.Sink.Apply(b)
	if err == nil && s.applied.Add(int64(b.Messages)) >= s.expect {
		s.once.Do(func() { e2eDone = time.Now(); close(s.done) })
	}
	return n, err
}

// discardSink takes the consumer's batches and keeps nothing: what the
// consumer's reading, decoding and batching cost without the store.
type discardSink struct{}

func (discardSink) Apply(consumer.Batch) (int, error)               { return 0, nil }
func (discardSink) Positions() (map[consumer.Position]int64, error) { return nil, nil }

// e2eIngest consumes into a new projection with the service's consumer
// and store, until every message is committed; with discard, into
// discardSink instead (dir unused).
func e2eIngest(ctx context.Context, cc consumer.Config, dir string, expect int64, discard bool) (int64, error) {
	var sink *countingSink
	path := filepath.Join(dir, store.FileName)
	if discard {
		sink = &countingSink{Sink: discardSink{}, expect: expect, done: make(chan struct{})}
	} else {
		if dir == "" {
			return 0, errors.New("e2e needs -dir")
		}
		os.RemoveAll(dir)
		st, err := store.Open(path, store.DefaultOptions())
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		defer st.Close()
		sink = &countingSink{Sink: pipeline.StoreSink{Store: st}, expect: expect, done: make(chan struct{})}
	}
	avro, err := consumer.NewAvroDecoder(consumer.AvroOptions{})
	if err != nil {
		return 0, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := consumer.New(cc, sink, consumer.NewDecoder(avro), consumer.NewMetrics(prometheus.NewRegistry()), log)
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	e2eStart = time.Now()
	go func() { ran <- c.Run(runCtx) }()
	select {
	case <-sink.done:
	case err := <-ran:
		return 0, fmt.Errorf("consumer stopped: %v", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("timed out with %d of %d messages applied", sink.applied.Load(), expect)
	}
	stop()
	<-ran
	if discard {
		return 0, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// replayIngest replays the topics into a new projection as enrollstatus
// rebuild does (pipeline.Replay into a file without fsyncs), until caught up.
func replayIngest(ctx context.Context, cc consumer.Config, dir string) (int64, error) {
	if dir == "" {
		return 0, errors.New("rebuild needs -dir")
	}
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, store.FileName)
	opts := store.DefaultOptions()
	opts.NoSync = true
	st, err := store.Open(path, opts)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	avro, err := consumer.NewAvroDecoder(consumer.AvroOptions{})
	if err != nil {
		return 0, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e2eStart = time.Now()
	r, err := pipeline.Replay(ctx, cc, st, consumer.NewDecoder(avro), log)
	if err != nil {
		return 0, err
	}
	if err := r.WaitCaughtUp(ctx, nil); err != nil {
		r.Stop()
		return 0, err
	}
	if err := r.Stop(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// watchPeakHeap writes a heap profile to path each time the heap in use
// grows 10% past its largest size so far: the profile of the peak.
func watchPeakHeap(path string) (stop func()) {
	done := make(chan struct{})
	go func() {
		var peak uint64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak+peak/10 {
				peak = ms.HeapInuse
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() { close(done) }
}
