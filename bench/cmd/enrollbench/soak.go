package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/enrollstatus/enrollstatus/bench/loadgen"
	"github.com/enrollstatus/enrollstatus/internal/synth"
)

type soakInterval struct {
	At         float64 `json:"at_seconds"`
	Requests   int64   `json:"requests"`
	Throughput float64 `json:"throughput_rps"`
	Errors     int64   `json:"errors"`
	Expected4  int64   `json:"expected_4xx"`
	Unexpected int64   `json:"unexpected"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	P999ms     float64 `json:"p999_ms"`
	AnonMiB    float64 `json:"rss_anon_mib"`
	RSSMiB     float64 `json:"rss_mib"`
}

type soakReport struct {
	Machine    machineInfo    `json:"machine"`
	Duration   string         `json:"duration"`
	Rate       float64        `json:"query_rate_rps"`
	IngestRate float64        `json:"ingest_rate_eps"`
	Produced   int64          `json:"events_produced"`
	Intervals  []soakInterval `json:"intervals"`
	Total      soakInterval   `json:"total"`
	Growth     float64        `json:"rss_anon_growth_after_warmup"`
	SlopeMiBh  float64        `json:"rss_anon_slope_mib_per_hour"`
	Pass       bool           `json:"pass"`
	Why        []string       `json:"why,omitempty"`
	RSS        []rssPoint     `json:"rss_series"`
}

type rssPoint struct {
	At      float64 `json:"at_seconds"`
	AnonMiB float64 `json:"anon_mib"`
}

// cmdSoak runs the service (enrollstatus serve) against a kfake broker fed
// continuously by a synthetic producer, and sends a sustained mixed query
// load: valid tokens for many users, and 401, 403 and 404 cases. Every
// interval it reports requests, errors, latency percentiles and the
// service's memory; it fails on any 5xx or transport error, on an
// unexpected status, or when memory outside the mmap grows by more than
// the allowed fraction after warm-up.
func cmdSoak(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	bin := fs.String("bin", ".cache/bench/bin/enrollstatus", "enrollstatus binary")
	cache := fs.String("cache", ".cache/bench", "cache directory")
	dur := fs.Duration("duration", 60*time.Second, "length of the soak")
	interval := fs.Duration("interval", 10*time.Second, "reporting interval")
	rate := fs.Float64("rate", 1000, "query rate, requests/s (open loop)")
	ingest := fs.Float64("ingest-rate", 500, "events/s produced during the soak")
	users := fs.Int("users", 20000, "synthetic users")
	history := fs.Int("history", 200000, "events produced before the soak")
	maxGrowth := fs.Float64("max-growth", 0.20, "allowed RssAnon growth after warm-up")
	out := fs.String("out", ".cache/bench/results/soak.json", "results file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dur > 2*time.Hour {
		return fmt.Errorf("-duration %v: at most 2h", *dur)
	}
	ctx, cancel := context.WithTimeout(baseCtx, *dur+5*time.Minute)
	defer cancel()

	b, err := startBroker(3)
	if err != nil {
		return err
	}
	defer b.Close()
	const courses = 200
	if _, err := b.produceHistory(ctx, 11, *users, courses, *history, stderr); err != nil {
		return err
	}
	dir := filepath.Join(*cache, "soak-work")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	addr, _ := freePort()
	svc, err := startChild(filepath.Join(*cache, "logs", "soak-service.log"), *bin, "serve", "--brokers", b.Addr,
		"--topics", strings.Join(b.Topics, ","), "--data-dir", dir, "--http-addr", addr, "--poll-interval", "1s",
		"--jwt-secret", benchSecret, "--jwt-issuer", benchIssuer, "--jwt-audience", benchAudience, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer svc.stop()
	if err := waitHTTP(svc, "http://"+addr+"/readyz", 5*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "service ready (history of %d events applied); soaking for %v\n", *history, *dur)

	// Continuous ingest: the generator goes on from where the history
	// stopped, in small batches, until the soak ends.
	prodCtx, stopProducing := context.WithCancel(ctx)
	var produced int64
	var prodWG sync.WaitGroup
	prodWG.Add(1)
	go func() {
		defer prodWG.Done()
		produced = produceLive(prodCtx, b, *users, courses, *history, *ingest)
	}()

	reqs := soakRequests(addr, *users, 20000)
	rep := soakReport{Machine: describeMachine(), Duration: dur.String(), Rate: *rate, IngestRate: *ingest}
	rss := startRSSSampler(svc.pid(), time.Second)
	start := time.Now()
	fmt.Fprintln(stdout, "| t (s) | requests | req/s | errors (5xx+transport) | expected 4xx | unexpected | p50 ms | p99 ms | p99.9 ms | RssAnon MiB |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	total, err := loadgen.Run(ctx, loadgen.Config{Addr: addr, Requests: reqs, Conns: 32, Rate: *rate, Duration: *dur,
		MaxRequests: int64(*rate*dur.Seconds()) + 1, Interval: *interval, OnInterval: func(s loadgen.Stats) {
			m, _ := readMem(svc.pid())
			iv := soakRow(s, time.Since(start), m)
			rep.Intervals = append(rep.Intervals, iv)
			fmt.Fprintf(stdout, "| %.0f | %d | %.0f | %d | %d | %d | %.3f | %.3f | %.3f | %.1f |\n", iv.At, iv.Requests, iv.Throughput,
				iv.Errors, iv.Expected4, iv.Unexpected, iv.P50ms, iv.P99ms, iv.P999ms, iv.AnonMiB)
		}})
	stopProducing()
	prodWG.Wait()
	series := rss.stop().Series
	if err != nil {
		return err
	}
	if done, err := svc.exited(); done {
		return fmt.Errorf("the service exited during the soak: %v (see %s)", err, svc.log)
	}
	m, _ := readMem(svc.pid())
	rep.Total = soakRow(total, time.Since(start), m)
	rep.Produced = produced
	for _, s := range series {
		rep.RSS = append(rep.RSS, rssPoint{At: s.At.Seconds(), AnonMiB: float64(s.Anon) / (1 << 20)})
	}

	// Memory trend after warm-up (the first fifth, at least 10 s): a least
	// squares line through RssAnon; growth is its rise over the window
	// relative to its start.
	warm := max(dur.Seconds()/5, 10)
	var xs, ys []float64
	for _, p := range rep.RSS {
		if p.At >= warm {
			xs, ys = append(xs, p.At), append(ys, p.AnonMiB)
		}
	}
	rep.Pass = true
	if len(xs) >= 3 {
		slope, icept := linearFit(xs, ys)
		startV := icept + slope*xs[0]
		endV := icept + slope*xs[len(xs)-1]
		rep.Growth = (endV - startV) / startV
		rep.SlopeMiBh = slope * 3600
	}
	fail := func(format string, args ...any) {
		rep.Pass = false
		rep.Why = append(rep.Why, fmt.Sprintf(format, args...))
	}
	if rep.Total.Errors > 0 {
		fail("%d 5xx or transport errors", rep.Total.Errors)
	}
	if rep.Total.Unexpected > 0 {
		fail("%d answers with an unexpected status", rep.Total.Unexpected)
	}
	if rep.Growth > *maxGrowth {
		fail("RssAnon grew %.0f%% after warm-up (more than %.0f%%)", rep.Growth*100, *maxGrowth*100)
	}
	if rep.Total.Throughput < 0.95**rate {
		fail("the offered %.0f req/s were not sustained (%.0f req/s)", *rate, rep.Total.Throughput)
	}
	fmt.Fprintf(stdout, "| **total** | %d | %.0f | %d | %d | %d | %.3f | %.3f | %.3f | %.1f |\n\n", rep.Total.Requests, rep.Total.Throughput,
		rep.Total.Errors, rep.Total.Expected4, rep.Total.Unexpected, rep.Total.P50ms, rep.Total.P99ms, rep.Total.P999ms, rep.Total.AnonMiB)
	fmt.Fprintf(stdout, "Ingest during the soak: %d events at %.0f/s offered. RssAnon trend after %.0fs warm-up: %+.1f%% (%+.1f MiB/h). Verdict: %s\n",
		produced, *ingest, warm, rep.Growth*100, rep.SlopeMiBh, map[bool]string{true: "**PASS**", false: "**FAIL** " + strings.Join(rep.Why, "; ")}[rep.Pass])
	if err := writeJSON(*out, rep); err != nil {
		return err
	}
	if !rep.Pass {
		return fmt.Errorf("soak failed: %s", strings.Join(rep.Why, "; "))
	}
	return nil
}

func soakRow(s loadgen.Stats, at time.Duration, m memStat) soakInterval {
	var c4 int64
	for code, n := range s.ByStatus {
		if code >= 400 && code < 500 {
			c4 += n
		}
	}
	return soakInterval{At: at.Seconds(), Requests: s.Requests, Throughput: s.Throughput(), Errors: s.Errors(),
		Expected4: c4 - s.Unexpected, Unexpected: s.Unexpected, P50ms: s.Percentile(s.Latency, 50),
		P99ms: s.Percentile(s.Latency, 99), P999ms: s.Percentile(s.Latency, 99.9),
		AnonMiB: float64(m.Anon) / (1 << 20), RSSMiB: float64(m.RSS) / (1 << 20)}
}

func linearFit(xs, ys []float64) (slope, intercept float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / d
	return slope, (sy - slope*sx) / n
}

// soakRequests is the mixed query load: mostly valid tokens for many
// users, and the client faults the API must answer without a 5xx.
func soakRequests(addr string, users, n int) []loadgen.Request {
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Now()
	path := func(u string) string { return "/api/mobile/v4/users/" + u + "/enrollments_status/" }
	out := make([]loadgen.Request, n)
	for i := range out {
		u := synth.Username(1 + rng.IntN(users))
		tok := lmsToken(u, now, 24*time.Hour, benchSecret)
		switch k := rng.IntN(100); {
		case k < 88: // the user's own token
			out[i] = loadgen.Request{Want: 200, Raw: loadgen.GetRequest(addr, path(u), map[string]string{"Authorization": "JWT " + tok})}
		case k < 92: // no token
			out[i] = loadgen.Request{Want: 401, Raw: loadgen.GetRequest(addr, path(u), nil)}
		case k < 95: // a token signed with another secret
			bad := lmsToken(u, now, 24*time.Hour, "not-the-secret")
			out[i] = loadgen.Request{Want: 401, Raw: loadgen.GetRequest(addr, path(u), map[string]string{"Authorization": "JWT " + bad})}
		case k < 98: // someone else's data
			other := synth.Username(1 + rng.IntN(users))
			if other == u {
				other += "x"
			}
			out[i] = loadgen.Request{Want: 403, Raw: loadgen.GetRequest(addr, path(other), map[string]string{"Authorization": "Bearer " + tok})}
		default: // an API version that does not exist
			out[i] = loadgen.Request{Want: 404, Raw: loadgen.GetRequest(addr, "/api/mobile/v9/users/"+u+"/enrollments_status/",
				map[string]string{"Authorization": "JWT " + tok})}
		}
	}
	return out
}

// produceLive produces rate events/s of live traffic until ctx ends and
// returns how many it produced.
func produceLive(ctx context.Context, b *benchBroker, users, courses, skip int, rate float64) int64 {
	gen := synth.New(11, users, courses, time.Now().UTC())
	for range skip { // continue the history's sequence
		gen.Next(60)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Balancer: &kafka.Hash{}, BatchSize: 1000,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireOne}
	defer w.Close()
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var n int64
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
		carry += rate * tick.Seconds()
		k := int(carry)
		carry -= float64(k)
		msgs := make([]kafka.Message, 0, k)
		for range k {
			m := gen.Next(2)
			km := kafka.Message{Topic: topicPrefix + "-" + m.Topic, Key: m.Key, Value: m.Value}
			for hk, hv := range m.Headers {
				km.Headers = append(km.Headers, kafka.Header{Key: hk, Value: []byte(hv)})
			}
			msgs = append(msgs, km)
		}
		if err := w.WriteMessages(ctx, msgs...); err == nil {
			n += int64(k)
		}
	}
}
