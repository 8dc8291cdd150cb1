// Package loadgen is an HTTP/1.1 load generator for loopback benchmarks.
//
// It has two modes. Open loop (Rate > 0) sends at a fixed offered rate on a
// fixed schedule: request i is due at start + i/Rate, and its latency is
// measured from when it was due, not from when it could be sent, so a
// server that stalls is charged for every request the stall delayed
// (no coordinated omission; the approach of wrk2). Saturation (Rate == 0)
// keeps every connection busy, closed loop, to find the highest throughput.
//
// Requests are pre-built bytes written on persistent connections and
// responses are parsed just enough to find their end, so that the
// generator costs the shared CPU as little as possible. Latencies go to
// HdrHistogram histograms (microseconds, three significant digits).
//
// Every run is bounded by Duration and MaxRequests and stops by itself;
// only loopback addresses are accepted as targets.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Request is one pre-built HTTP/1.1 request and the status it should get.
type Request struct {
	Raw  []byte
	Want int // expected status; 0: any non-5xx
}

// Config describes one run.
type Config struct {
	// Addr is the target's host:port; it must be a loopback address.
	Addr string
	// Requests are sent in order, round robin; the caller shuffles them.
	Requests []Request
	// Conns is the number of persistent connections.
	Conns int
	// Rate is the offered rate in requests per second; 0 means saturation
	// (closed loop).
	Rate float64
	// Duration bounds the run; MaxRequests, when positive, too.
	Duration    time.Duration
	MaxRequests int64
	// Interval, with OnInterval, reports statistics every Interval.
	Interval   time.Duration
	OnInterval func(Stats)
	// Timeout bounds one request; a request past it is a transport error.
	Timeout time.Duration
}

// Stats are the counts and latencies of a run or of one interval.
type Stats struct {
	Start, End time.Time
	// Requests completed (any status), transport errors, 5xx answers,
	// answers with the expected status, and answers with another non-5xx
	// status.
	Requests, TransportErrors, ServerErrors, Expected, Unexpected int64
	// ByStatus counts answers per status code.
	ByStatus map[int]int64
	// Latency is measured from when each request was due (open loop) or
	// sent (saturation); Service always from when it was written.
	Latency, Service *hdrhistogram.Histogram
}

// Throughput is completed requests per second.
func (s Stats) Throughput() float64 {
	d := s.End.Sub(s.Start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(s.Requests) / d
}

// Percentile returns a latency percentile (0-100) in milliseconds.
func (s Stats) Percentile(h *hdrhistogram.Histogram, q float64) float64 {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return float64(h.ValueAtQuantile(q)) / 1000
}

// Errors is every outcome that must not happen: transport errors and 5xx.
func (s Stats) Errors() int64 { return s.TransportErrors + s.ServerErrors }

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

func newStats() Stats {
	return Stats{ByStatus: map[int]int64{}, Latency: newHist(), Service: newHist()}
}

func (s *Stats) merge(o Stats) {
	s.Requests += o.Requests
	s.TransportErrors += o.TransportErrors
	s.ServerErrors += o.ServerErrors
	s.Expected += o.Expected
	s.Unexpected += o.Unexpected
	for k, v := range o.ByStatus {
		s.ByStatus[k] += v
	}
	s.Latency.Merge(o.Latency)
	s.Service.Merge(o.Service)
}

// recorder holds one connection's statistics: the current interval and the
// whole run.
type recorder struct {
	mu         sync.Mutex
	cur, total Stats
}

func (r *recorder) record(due, sent, done time.Time, status int, want int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range []*Stats{&r.cur, &r.total} {
		if err != nil {
			s.TransportErrors++
			continue
		}
		s.Requests++
		s.ByStatus[status]++
		switch {
		case status >= 500:
			s.ServerErrors++
		case want == 0 || status == want:
			s.Expected++
		default:
			s.Unexpected++
		}
		s.Latency.RecordValue(max(done.Sub(due).Microseconds(), 1))
		s.Service.RecordValue(max(done.Sub(sent).Microseconds(), 1))
	}
}

func (r *recorder) takeInterval() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.cur
	r.cur = newStats()
	return s
}

// CheckLoopback refuses any target that is not on this machine's loopback.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("loadgen: %s resolves to %s, which is not a loopback address", addr, ip)
		}
	}
	if len(ips) == 0 {
		return fmt.Errorf("loadgen: %s does not resolve", addr)
	}
	return nil
}

// Run runs the load described by cfg and returns the whole run's
// statistics. It returns when Duration passed or MaxRequests were sent.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := CheckLoopback(cfg.Addr); err != nil {
		return Stats{}, err
	}
	if len(cfg.Requests) == 0 || cfg.Conns <= 0 || cfg.Duration <= 0 {
		return Stats{}, errors.New("loadgen: need requests, connections and a duration")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Timeout)
	defer cancel()

	recs := make([]*recorder, cfg.Conns)
	for i := range recs {
		recs[i] = &recorder{cur: newStats(), total: newStats()}
	}
	start := time.Now()
	end := start.Add(cfg.Duration)

	var reporter sync.WaitGroup
	stopReports := make(chan struct{})
	if cfg.Interval > 0 && cfg.OnInterval != nil {
		reporter.Add(1)
		go func() {
			defer reporter.Done()
			t := time.NewTicker(cfg.Interval)
			defer t.Stop()
			last := start
			report := func(now time.Time) {
				s := newStats()
				for _, r := range recs {
					s.merge(r.takeInterval())
				}
				s.Start, s.End = last, now
				last = now
				if s.Requests+s.TransportErrors > 0 {
					cfg.OnInterval(s)
				}
			}
			for {
				select {
				case <-stopReports:
					now := time.Now() // the last, partial interval
					if now.After(end) {
						now = end
					}
					report(now)
					return
				case now := <-t.C:
					report(now)
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for k := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := worker{cfg: &cfg, rec: recs[k], k: k, start: start, end: end}
			w.run(ctx)
		}()
	}
	wg.Wait()
	close(stopReports)
	reporter.Wait()

	total := newStats()
	for _, r := range recs {
		total.merge(r.total)
	}
	total.Start, total.End = start, time.Now()
	if cfg.Rate > 0 {
		// The run lasts as long as its schedule, not as long as its last
		// straggler.
		total.End = end
	}
	return total, nil
}

type worker struct {
	cfg        *Config
	rec        *recorder
	k          int
	start, end time.Time
	conn       net.Conn
	br         *bufio.Reader
}

func (w *worker) run(ctx context.Context) {
	defer func() {
		if w.conn != nil {
			w.conn.Close()
		}
	}()
	cfg := w.cfg
	n := len(cfg.Requests)
	for j := int64(0); ; j++ {
		i := j*int64(cfg.Conns) + int64(w.k) // this connection's share of the schedule
		if cfg.MaxRequests > 0 && i >= cfg.MaxRequests {
			return
		}
		var due time.Time
		if cfg.Rate > 0 {
			due = w.start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if !due.Before(w.end) {
				return
			}
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		} else {
			due = time.Now()
			if !due.Before(w.end) {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		req := cfg.Requests[i%int64(n)]
		sent := time.Now()
		status, err := w.do(req.Raw)
		w.rec.record(due, sent, time.Now(), status, req.Want, err)
		if err != nil {
			w.reset()
		}
	}
}

func (w *worker) reset() {
	if w.conn != nil {
		w.conn.Close()
	}
	w.conn, w.br = nil, nil
}

func (w *worker) do(raw []byte) (int, error) {
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.cfg.Addr, w.cfg.Timeout)
		if err != nil {
			return 0, err
		}
		w.conn, w.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	w.conn.SetDeadline(time.Now().Add(w.cfg.Timeout))
	if _, err := w.conn.Write(raw); err != nil {
		return 0, err
	}
	status, closeAfter, err := readResponse(w.br)
	if err == nil && closeAfter {
		w.reset()
	}
	return status, err
}

// readResponse reads one HTTP/1.1 response to a GET, discarding its body,
// and returns its status and whether the server closes the connection.
func readResponse(br *bufio.Reader) (status int, closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := int64(-1), false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return status, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closeAfter = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
	case status == 204 || status == 304 || status/100 == 1:
	default:
		return status, true, errors.New("response without a length")
	}
	return status, closeAfter, err
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				l, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

// GetRequest builds a GET request for path with extra headers.
func GetRequest(host, path string, header map[string]string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: enrollbench\r\nAccept: application/json\r\n", path, host)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Get sends one request on a new connection and returns the status and
// body: to sample an answer before a run.
func Get(addr string, raw []byte) (int, []byte, error) {
	if err := CheckLoopback(addr); err != nil {
		return 0, nil, err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return 0, nil, err
	}
	// Ask net/http-like parsing of a whole body: read headers, then the body.
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, _ := strconv.Atoi(line[9:12])
	length := -1
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return status, nil, err
		}
		h = string(bytes.TrimRight([]byte(h), "\r\n"))
		if h == "" {
			break
		}
		if k, v, ok := bytes.Cut([]byte(h), []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return status, nil, errors.New("no Content-Length")
	}
	body := make([]byte, length)
	_, err = io.ReadFull(br, body)
	return status, body, err
}
