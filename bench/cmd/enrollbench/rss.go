package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// memStat is a process's resident memory from /proc/PID/status. Anon is
// RssAnon: resident memory outside file mappings, so bbolt's memory-mapped
// file (RssFile) is not in it.
type memStat struct {
	RSS, Anon, File int64 // bytes
}

func readMem(pid int) (memStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStat{}, err
	}
	var m memStat
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(string(f[0]), 10, 64)
		switch string(k) {
		case "VmRSS":
			m.RSS = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "RssFile":
			m.File = n << 10
		}
	}
	return m, nil
}

// rssSampler samples a process's memory periodically and keeps the peaks
// and the series.
type rssSampler struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	res   rssResult
}

type rssResult struct {
	PeakAnon int64       `json:"peak_rss_anon_bytes"`
	PeakRSS  int64       `json:"peak_rss_bytes"`
	Series   []rssSample `json:"-"`
}

type rssSample struct {
	At   time.Duration
	Anon int64
	RSS  int64
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := readMem(pid); err == nil {
				s.mu.Lock()
				s.res.PeakAnon = max(s.res.PeakAnon, m.Anon)
				s.res.PeakRSS = max(s.res.PeakRSS, m.RSS)
				s.res.Series = append(s.res.Series, rssSample{At: time.Since(start), Anon: m.Anon, RSS: m.RSS})
				s.mu.Unlock()
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// snapshot returns the samples so far.
func (s *rssSampler) snapshot() rssResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.Series = append([]rssSample(nil), s.res.Series...)
	return r
}

func (s *rssSampler) stop() rssResult {
	close(s.stopc)
	<-s.done
	return s.snapshot()
}

// majorFaults returns a process's major page faults so far (field 12 of
// /proc/PID/stat), or 0 when it cannot be read.
func majorFaults(pid int) int64 { return procStat(pid, 12) }

// cpuTicks is the user and system CPU time a process used so far, in clock
// ticks (USER_HZ, 100 a second on Linux).
func cpuTicks(pid int) int64 { return procStat(pid, 14) + procStat(pid, 15) }

// ticksPerSecond is USER_HZ, which Linux fixes at 100 for /proc.
const ticksPerSecond = 100

// procStat reads field (1-based, as proc(5) numbers them) of
// /proc/pid/stat; 0 if it cannot.
func procStat(pid, field int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // from field 3 on
	if len(f) < field-2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[field-3]), 10, 64)
	return n
}
