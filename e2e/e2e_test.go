//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Settings, from the environment:
//
//	ENROLLSTATUS_E2E=1     run the suite (otherwise it is skipped)
//	E2E_CRASHES=20         SIGKILLs of the service during ingest
//	E2E_BROKER_FAULTS=2    broker outages (odd ones clean stops, even ones SIGKILL)
//	E2E_USERS=3000         users of the generated history
//	E2E_COURSES=60         courses
//	E2E_SEED=n             history seed (default: random, logged)
//	E2E_WORKDIR=dir        where the run writes (default: a temporary dir)
//	E2E_BIN, E2E_PY        a built enrollstatus binary, the producer venv's python
//	                       (default: built / set up by the test)
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// report is what the suite prints at the end.
type report struct {
	byTopic         map[string]int
	avroSent        int
	jsonSent        int
	logTotal        int64
	applied         uint64
	crashes         int
	appliedAtKill   []uint64
	brokerRestarts  int
	outageRestarts  int
	outages         []string
	partitionsAdded int
	usersCompared   int
	rounds          int
	mismatches      int
	phases          []string
	probe           string
}

func (r *report) addTopics(m map[string]int) {
	for t, n := range m {
		r.byTopic[t] += n
	}
}

// TestEndToEnd is issue 5's suite; see doc.go. Its phases share one broker
// and one history, each adding its part of the history, and each ends with
// every user's answer compared with the reference.
func TestEndToEnd(t *testing.T) {
	if os.Getenv("ENROLLSTATUS_E2E") != "1" {
		t.Skip("end-to-end suite against a real Apache Kafka broker and the real Open edX producer " +
			"(needs Java, Maven, Python 3.11, kcat): run scripts/e2e.sh, or after its installs " +
			"ENROLLSTATUS_E2E=1 go test ./e2e/ -v -count=1 -timeout 30m")
	}
	var (
		nCrashes = envInt("E2E_CRASHES", 20)
		nFaults  = envInt("E2E_BROKER_FAULTS", 2)
		nUsers   = envInt("E2E_USERS", 3000)
		nCourses = envInt("E2E_COURSES", 60)
		seed     = uint64(envInt("E2E_SEED", int(time.Now().UnixNano()%1e9)))
		policy   = projection.DefaultPolicy() // the service runs with the defaults too
		rep      = &report{byTopic: map[string]int{}}
		began    = time.Now()
	)
	t.Logf("seed %d (E2E_SEED=%d reproduces the history), %d users, %d courses, %d crashes, %d broker faults",
		seed, seed, nUsers, nCourses, nCrashes, nFaults)

	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup // background goroutines, waited for before the processes are killed

	phase := func(name string, f func()) {
		start := time.Now()
		t.Logf("=== phase %s", name)
		f()
		d := time.Since(start).Round(100 * time.Millisecond)
		rep.phases = append(rep.phases, fmt.Sprintf("%s %v", name, d))
		t.Logf("=== phase %s done in %v", name, d)
	}

	var s *suite
	phase("setup", func() { s = newSuite(ctx, t) })
	t.Cleanup(func() { cancel(); bg.Wait() }) // runs before the suite's cleanups kill the processes

	var (
		h      = generate(seed, nUsers, nCourses, time.Now(), policy.Window)
		c      = newClient(s.secret, s.admin)
		who    = checks(h)
		topics = topicList()
		sent   []record // every record whose messages the topics hold
		rng    = rand.New(rand.NewPCG(seed, 42))
		s1     = s.newService("primary", true) // decodes with the schema registry
	)
	// A low threshold, so that restarts far behind catch up by merging the
	// projection with the backlog (and some kills fall in a merge), and the
	// others batch by batch.
	s1.extra = []string{"--merge-catch-up-min", "300"}
	t.Logf("history: %d produce.py events (duplicates included), %d kcat CloudEvents", len(h.avro),
		len(h.courseJSON)+len(h.retiredJSON)+len(h.growJSON))

	// The produce.py events, in the order they are sent: 70% while the
	// service is being killed, a share per broker outage, the rest once
	// partitions were added.
	nAvro, faultShare := len(h.avro), 16
	if nFaults == 0 {
		faultShare = 0
	}
	crashPart := h.avro[:nAvro*70/100]
	faultParts := split(h.avro[nAvro*70/100:nAvro*(70+faultShare)/100], nFaults)
	growPart := h.avro[nAvro*(70+faultShare)/100:]

	send := func(label string, recs []record, extra ...string) {
		t.Helper()
		p, err := s.produce(label, recs, extra...)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, recs...)
		rep.avroSent += len(recs)
		rep.addTopics(p.Topics)
	}
	sendJSON := func(recs []record) {
		t.Helper()
		n, err := s.kcat(recs)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, recs...)
		rep.jsonSent += len(recs)
		rep.addTopics(n)
	}

	// waitApplied waits until the replica has applied every message on the
	// topics, and fails unless it applied each exactly once.
	waitApplied := func(sv *service, label string) {
		t.Helper()
		_, total, err := s.logEnd(ctx)
		if err != nil {
			t.Fatalf("%s: end offsets: %v", label, err)
		}
		var in inspection
		err = waitFor(4*time.Minute, func() bool {
			addr := sv.currentAddr()
			if addr == "" {
				return false
			}
			in, err = c.inspect(addr, false)
			return err == nil && in.Applied >= uint64(total)
		})
		if err != nil {
			t.Fatalf("%s: %s did not catch up: applied %d of %d messages; partitions %+v",
				label, sv.name, in.Applied, total, in.Partitions)
		}
		if in.Applied != uint64(total) {
			t.Errorf("%s: %s applied %d messages, the topics hold %d: something was applied twice",
				label, sv.name, in.Applied, total)
		}
		rep.logTotal, rep.applied = total, in.Applied
	}
	// verify compares every user's answer with the reference.
	verify := func(sv *service, label string) {
		t.Helper()
		waitApplied(sv, label)
		start := time.Now()
		cmp := compareAll(c, sv.currentAddr(), newExpectation(sent, policy), who, seed)
		n, mm := cmp.answers, cmp.mismatches
		rep.usersCompared, rep.rounds, rep.mismatches = n, rep.rounds+1, rep.mismatches+len(mm)
		t.Logf("%s: %d answers of %s compared with the reference in %v (%d non-empty; %d courses, %d recently active, %d with a null name): %d mismatches",
			label, n, sv.name, time.Since(start).Round(time.Millisecond), cmp.nonEmpty, cmp.entries, cmp.recent, cmp.nullNames, len(mm))
		if len(mm) > 0 {
			sort.Strings(mm)
			t.Errorf("%s: %d of %d answers differ from the reference, e.g.\n%s", label, len(mm), n,
				strings.Join(mm[:min(len(mm), 10)], "\n"))
		}
	}

	names := make([]string, 0, len(h.users))
	for _, u := range h.users {
		names = append(names, u.names[len(u.names)-1].name)
	}

	// observability checks what a caught-up replica tells about itself: the
	// freshness headers, the lag, connection and partition metrics, and, for
	// a process that consumed everything itself (no restart), the per-topic
	// message counts and the outcomes: every tracking event that is not a
	// completion ignored, nothing skipped.
	observability := func(sv *service, wholeLog bool) {
		t.Helper()
		addr := sv.currentAddr()
		ends, _, err := s.logEnd(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var newest time.Time
		tracking := 0
		for _, r := range sent {
			if len(r.events()) > 0 && r.Time.After(newest) {
				newest = r.Time
			}
			if r.Kind == kindTracking {
				tracking++
			}
		}
		var a answer
		if err := waitFor(30*time.Second, func() bool {
			a, err = c.status(addr, names[0], rng)
			return err == nil && a.header.Get("X-Enrollstatus-Lag") == "0"
		}); err != nil {
			t.Errorf("%s: X-Enrollstatus-Lag %q after catching up", sv.name, a.header.Get("X-Enrollstatus-Lag"))
		}
		// The newest event time applied, or, for an event stamped ahead of
		// the clock (the history has some), no later than the commit that
		// applied it.
		lastEvent, lastErr := time.Parse(time.RFC3339Nano, a.header.Get("X-Enrollstatus-Last-Event-Time"))
		committed, committedErr := time.Parse(time.RFC3339Nano, a.header.Get("X-Enrollstatus-Committed-At"))
		switch {
		case lastErr != nil || committedErr != nil:
			t.Errorf("%s: freshness headers %q, %q: %v %v", sv.name, a.header.Get("X-Enrollstatus-Last-Event-Time"),
				a.header.Get("X-Enrollstatus-Committed-At"), lastErr, committedErr)
		case !newest.After(committed) && !lastEvent.Equal(newest):
			t.Errorf("%s: X-Enrollstatus-Last-Event-Time %s, the newest event sent is %s", sv.name, lastEvent.Format(time.RFC3339Nano), newest.Format(time.RFC3339Nano))
		case newest.After(committed) && (lastEvent.After(committed) || lastEvent.IsZero()):
			t.Errorf("%s: X-Enrollstatus-Last-Event-Time %s, after the last commit %s (the newest event sent is %s, ahead of the clock)",
				sv.name, lastEvent.Format(time.RFC3339Nano), committed.Format(time.RFC3339Nano), newest.Format(time.RFC3339Nano))
		}
		if got := a.header.Get("X-Enrollstatus-Stale"); got != "false" {
			t.Errorf("%s: X-Enrollstatus-Stale %q after catching up", sv.name, got)
		}
		m, err := c.metrics(addr)
		if err != nil {
			t.Fatal(err)
		}
		lagSeries := 0
		for k, v := range m {
			if strings.HasPrefix(k, "enrollstatus_consumer_lag_messages{") {
				lagSeries++
				if v != 0 {
					t.Errorf("%s: %s = %v after catching up", sv.name, k, v)
				}
			}
		}
		parts, _ := sumMetric(m, "enrollstatus_consumer_partitions")
		conn, _ := sumMetric(m, "enrollstatus_consumer_connected")
		last, _ := sumMetric(m, "enrollstatus_last_applied_event_timestamp_seconds")
		if lagSeries != len(ends) || int(parts) != len(ends) || conn != 1 {
			t.Errorf("%s: %d lag series, %v partitions, connected %v; the topics have %d partitions",
				sv.name, lagSeries, parts, conn, len(ends))
		}
		// the gauge holds whole seconds (consumer/apply.go sets Unix())
		if d := last - float64(newest.UnixNano())/1e9; d > 0.001 || d <= -1 {
			t.Errorf("%s: enrollstatus_last_applied_event_timestamp_seconds %f, newest event %v", sv.name, last, newest)
		}
		outcomes := map[string]float64{}
		byTopic := map[string]float64{}
		for k, v := range m {
			if !strings.HasPrefix(k, "enrollstatus_events_total{") {
				continue
			}
			outcomes[label(k, "outcome")] += v
			byTopic[label(k, "topic")] += v
		}
		if outcomes["skipped"]+outcomes["failed"]+outcomes["dead_lettered"] != 0 {
			t.Errorf("%s: poison outcomes %v", sv.name, outcomes)
		}
		if !wholeLog {
			return
		}
		for _, tp := range topicList() {
			var want int64
			for k, v := range ends {
				if strings.HasPrefix(k, tp+"/") {
					want += v
				}
			}
			if int64(byTopic[tp]) != want {
				t.Errorf("%s: enrollstatus_events_total{topic=%q} sums to %v, the topic holds %d", sv.name, tp, byTopic[tp], want)
			}
		}
		if int(outcomes["ignored"]) != tracking {
			t.Errorf("%s: %v messages ignored, %d non-completion tracking events were sent", sv.name, outcomes["ignored"], tracking)
		}
		t.Logf("%s: outcomes %v, newest event %v, lag 0 on %d partitions", sv.name, outcomes, newest, lagSeries)
	}

	probe := startProber(c, s1.currentAddr, names)
	var probeOnce sync.Once
	finishProbe := func() {
		probeOnce.Do(func() {
			probe.finish()
			rep.probe = fmt.Sprintf("%d answers 200, %d attempts while no process was up, %d bad",
				probe.ok.Load(), probe.down.Load(), len(probe.bad))
			if len(probe.bad) > 0 {
				t.Errorf("background requests got errors: %s", strings.Join(probe.bad, "\n"))
			}
		})
	}
	t.Cleanup(finishProbe)

	// 1-4. Ingest while the service is killed with SIGKILL at random moments
	// and restarted on the same data dir. After each kill the file must open
	// and its messages_applied must equal the sum of its stored offsets
	// (records and offsets are committed together).
	phase("ingest under kill -9", func() {
		chunks := split(crashPart, 10)
		var crashes atomic.Int64
		loopErr := make(chan error, 1)
		bg.Go(func() {
			loopErr <- func() error {
				krng := rand.New(rand.NewPCG(seed, 7))
				for int(crashes.Load()) < nCrashes {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if err := s1.start(topics); err != nil {
						return err
					}
					select {
					case <-time.After(50*time.Millisecond + time.Duration(krng.Int64N(int64(1500*time.Millisecond)))):
					case <-ctx.Done():
						return ctx.Err()
					}
					if err := s1.crash(); err != nil {
						return err
					}
					o, err := s1.inspectOffline()
					if err != nil {
						return fmt.Errorf("after crash %d the projection does not open: %w", crashes.Load()+1, err)
					}
					var next int64
					for _, off := range o.Offsets {
						next += off.Next
					}
					if uint64(next) != o.Applied {
						return fmt.Errorf("after crash %d: messages_applied %d, stored offsets sum to %d",
							crashes.Load()+1, o.Applied, next)
					}
					rep.appliedAtKill = append(rep.appliedAtKill, o.Applied)
					crashes.Add(1)
				}
				return s1.start(topics)
			}()
		})
		var loopDone error
		finished := false
		for i, chunk := range chunks {
			// pace the producer so that kills fall all along the ingest
			want := int64(nCrashes * i / len(chunks))
			err := waitFor(5*time.Minute, func() bool {
				if !finished {
					select {
					case loopDone = <-loopErr:
						finished = true
					default:
					}
				}
				return crashes.Load() >= want || finished
			})
			if loopDone != nil {
				t.Fatalf("crash loop: %v", loopDone)
			}
			if err != nil {
				t.Fatalf("crash loop stalled at %d crashes", crashes.Load())
			}
			send(fmt.Sprintf("crash-%02d", i), chunk)
			switch i {
			case 3:
				sendJSON(h.courseJSON)
			case 6:
				sendJSON(h.retiredJSON)
			}
		}
		if !finished {
			loopDone = <-loopErr
		}
		if loopDone != nil {
			t.Fatalf("crash loop: %v", loopDone)
		}
		rep.crashes = int(crashes.Load())
		if _, err := s1.waitListening(time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d kills; messages_applied found on disk after each: %v", rep.crashes, rep.appliedAtKill)
		verify(s1, "after the crashes")
	})

	// 4b. A replica that goes away: a third one catches up (a new replica's
	// bulk load) and stops; it comes back once the broker faults and the
	// new partitions have put it far behind (see 7b).
	returning := s.newService("returning", false)
	returning.extra = []string{"--merge-catch-up-min", "300"}
	startReady := func(sv *service) string {
		t.Helper()
		if err := sv.start(topics); err != nil {
			t.Fatal(err)
		}
		addr, err := sv.waitListening(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitFor(4*time.Minute, func() bool {
			code, _, err := c.get(addr, "/readyz", false)
			return err == nil && code == http.StatusOK
		}); err != nil {
			t.Fatalf("%s never ready: %v", sv.name, err)
		}
		return addr
	}
	// sameAsPrimary compares a replica's projection, at addr, with the
	// primary's (digest and messages applied), and returns the primary's.
	sameAsPrimary := func(sv *service, addr string) inspection {
		t.Helper()
		a, err := c.inspect(s1.currentAddr(), true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.inspect(addr, true)
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest == "" || a.Digest != b.Digest || a.Applied != b.Applied {
			t.Errorf("%s differs from the primary: digest %s applied %d, the primary's digest %s applied %d",
				sv.name, b.Digest, b.Applied, a.Digest, a.Applied)
		}
		return a
	}
	phase("a replica that goes away", func() {
		startReady(returning)
		verify(returning, "before it goes away")
		if err := returning.proc().stop(30 * time.Second); err != nil {
			t.Fatalf("%s: graceful stop: %v", returning.name, err)
		}
	})

	// 5. Broker outages during ingest: answers stay 200 and /readyz ready,
	// answers say stale and the consumer disconnected; after the restart the
	// service reconnects by itself and catches up.
	phase("broker faults", func() {
		for f := range nFaults {
			kill := f%2 == 1
			kind := "clean stop"
			if kill {
				kind = "SIGKILL"
			}
			label := fmt.Sprintf("outage-%d", f+1)
			addr := s1.currentAddr()
			type result struct {
				p   produced
				err error
			}
			// The outage's share of the history goes in four produce.py runs,
			// back to back; the broker stops as soon as the first one is
			// acknowledged, so the others are produced through the outage
			// (librdkafka retries until the broker is back) while the service
			// is still consuming the first.
			chunk := faultParts[f]
			first, pc := make(chan error, 1), make(chan result, 1)
			bg.Go(func() {
				all := produced{Topics: map[string]int{}}
				for k, sub := range split(chunk, 4) {
					p, err := s.produce(fmt.Sprintf("%s-%d", label, k), sub, "--no-topic-check", "--flush-timeout", "300")
					if k == 0 {
						first <- err
					}
					if err != nil {
						pc <- result{all, err}
						return
					}
					for tp, n := range p.Topics {
						all.Topics[tp] += n
					}
				}
				pc <- result{all, nil}
			})
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			stopArgs := []string{"stop"}
			if kill {
				stopArgs = append(stopArgs, "--kill")
			}
			down := time.Now()
			if err := s.kafka(time.Minute, stopArgs...); err != nil {
				t.Fatal(err)
			}
			var last answer
			var conn float64 = -1
			err := waitFor(time.Minute, func() bool {
				if m, err := c.metrics(addr); err == nil {
					conn, _ = sumMetric(m, "enrollstatus_consumer_connected")
				}
				a, err := c.status(addr, names[rng.IntN(len(names))], rng)
				if err == nil {
					last = a
				}
				return err == nil && a.code == http.StatusOK && a.header.Get("X-Enrollstatus-Stale") == "true" && conn == 0
			})
			noticed := time.Since(down)
			if err != nil {
				t.Fatalf("%s: broker down for %v: connected=%v, last answer %d stale=%q",
					label, noticed, conn, last.code, last.header.Get("X-Enrollstatus-Stale"))
			}
			// while it is down: every answer 200 and stale, ready all along
			for range 20 {
				a, err := c.status(addr, names[rng.IntN(len(names))], rng)
				if err != nil || a.code != http.StatusOK || a.header.Get("X-Enrollstatus-Stale") != "true" {
					t.Errorf("%s: answer while the broker is down: %v %d stale=%q", label, err, a.code, a.header.Get("X-Enrollstatus-Stale"))
				}
				if code, body, err := c.get(addr, "/readyz", false); err != nil || code != http.StatusOK {
					t.Errorf("%s: /readyz while the broker is down: %v %d %s", label, err, code, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if kill {
				// the service, too, crashes during the outage: restarted
				// with no broker to talk to, it answers from its file
				// (stale); /readyz waits for the brokers (start-up catch-up)
				if err := s1.crash(); err != nil {
					t.Fatal(err)
				}
				if err := s1.start(topics); err != nil {
					t.Fatal(err)
				}
				if addr, err = s1.waitListening(time.Minute); err != nil {
					t.Fatal(err)
				}
				for range 10 {
					a, err := c.status(addr, names[rng.IntN(len(names))], rng)
					if err != nil || a.code != http.StatusOK || a.header.Get("X-Enrollstatus-Stale") != "true" {
						t.Errorf("%s: answer of a service restarted while the broker is down: %v %d stale=%q",
							label, err, a.code, a.header.Get("X-Enrollstatus-Stale"))
					}
				}
				code, body, _ := c.get(addr, "/readyz", false)
				t.Logf("%s: service restarted while the broker is down: answers 200 stale; /readyz %d %s", label, code, body)
				rep.outageRestarts++
			}
			restart := time.Now()
			if err := s.kafka(4*time.Minute, "restart"); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			r := <-pc
			if r.err != nil {
				t.Fatalf("%s: producing through the outage: %v", label, r.err)
			}
			sent = append(sent, chunk...)
			rep.avroSent += len(chunk)
			rep.addTopics(r.p.Topics)
			var stale string
			err = waitFor(2*time.Minute, func() bool {
				if m, err := c.metrics(addr); err == nil {
					conn, _ = sumMetric(m, "enrollstatus_consumer_connected")
				}
				a, err := c.status(addr, names[rng.IntN(len(names))], rng)
				stale = a.header.Get("X-Enrollstatus-Stale")
				code, _, _ := c.get(addr, "/readyz", false)
				return err == nil && conn == 1 && stale == "false" && code == http.StatusOK
			})
			if err != nil {
				t.Fatalf("%s: not reconnected (and ready) %v after the broker restart: connected=%v stale=%q", label, time.Since(back), conn, stale)
			}
			rep.brokerRestarts++
			o := fmt.Sprintf("%s (%s): stale and disconnected after %v, broker down %v, restart took %v, fresh again %v after it",
				label, kind, noticed.Round(100*time.Millisecond), restart.Sub(down).Round(100*time.Millisecond),
				back.Sub(restart).Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))
			rep.outages = append(rep.outages, o)
			t.Log(o)
			verify(s1, label)
		}
	})

	// 6. Partitions added while the service runs: kcat writes to the new
	// partitions of the JSON topic, the real producer's keys spread over the
	// new partitions of the enrollment topic; the service discovers them.
	phase("partitions added", func() {
		addr := s1.currentAddr()
		m, err := c.metrics(addr)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := sumMetric(m, "enrollstatus_consumer_partitions")
		growth := map[string]int{jsonTopic: 5, "dev-learning-course-enrollment-lifecycle": 6}
		for topic, n := range growth {
			if err := s.kafka(2*time.Minute, "add-partitions", topic, strconv.Itoa(n)); err != nil {
				t.Fatal(err)
			}
			rep.partitionsAdded += n - s.partitions[topic]
			s.partitions[topic] = n
		}
		// producers pick partitions from metadata: wait until every new
		// partition has a leader that answers
		if err := waitFor(time.Minute, func() bool {
			ends, _, err := s.logEnd(ctx)
			total := 0
			for _, n := range s.partitions {
				total += n
			}
			return err == nil && len(ends) == total
		}); err != nil {
			t.Fatalf("the new partitions never got a leader: %v", err)
		}
		sendJSON(h.growJSON)
		p, err := s.produce("grow", growPart)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, growPart...)
		rep.avroSent += len(growPart)
		rep.addTopics(p.Topics)
		onNew := p.Partitions["dev-learning-course-enrollment-lifecycle/4"] + p.Partitions["dev-learning-course-enrollment-lifecycle/5"]
		if onNew == 0 {
			t.Errorf("the real producer put nothing on the new partitions: %v", p.Partitions)
		}
		want := before + float64(rep.partitionsAdded)
		var now float64
		if err := waitFor(time.Minute, func() bool {
			m, err := c.metrics(addr)
			if err == nil {
				now, _ = sumMetric(m, "enrollstatus_consumer_partitions")
			}
			return now == want
		}); err != nil {
			t.Fatalf("enrollstatus_consumer_partitions is %v, want %v", now, want)
		}
		t.Logf("partitions %v -> %v; the producer put %d messages on the new enrollment partitions, kcat %d on the new JSON ones",
			before, now, onNew, len(h.growJSON))
		verify(s1, "after adding partitions")
	})

	// 7. A second replica, on its own data dir and without the schema
	// registry (the built-in schemas), builds the same projection.
	var s2 *service
	phase("second replica", func() {
		s2 = s.newService("replica", false)
		addr := startReady(s2)
		verify(s2, "second replica")
		a := sameAsPrimary(s2, addr)
		t.Logf("digest %s on both (primary survived %d kills and %d broker outages), %d messages applied each",
			a.Digest, rep.crashes, rep.brokerRestarts, a.Applied)

		// An online rebuild of the replica from the real broker: a bulk load
		// into a new file, then the ordinary consumer, then the swap. The
		// result equals the primary, which never rebuilt.
		start := time.Now()
		pr, err := c.rebuild(addr, 4*time.Minute)
		if err != nil {
			t.Fatalf("online rebuild of the replica: %v\n%s", err, tailFile(s2.proc().log, 20))
		}
		if pr.BulkLoaded == 0 {
			t.Errorf("the rebuild did not bulk-load: %+v", pr)
		}
		r, err := c.inspect(addr, true)
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest != a.Digest {
			t.Errorf("rebuilt replica digest %s differs from the primary's %s", r.Digest, a.Digest)
		}
		t.Logf("online rebuild of the replica in %v: %d messages bulk-loaded, %d applied in all, digest equal to the primary's",
			time.Since(start).Round(time.Millisecond), pr.BulkLoaded, pr.Applied)
		observability(s1, false)
		observability(s2, true)
	})

	// 7b. The replica that went away comes back far behind, with partitions
	// it has never read: it catches up by merging its projection with the
	// backlog into a new file, which equals the primary's.
	phase("a replica back from an outage", func() {
		held := appliedOnDisk(t, returning)
		addr := startReady(returning)
		verify(returning, "back from an outage")
		if n := returning.logCount(`"catch-up (merge) done`); n != 1 {
			t.Errorf("%s came back %d messages behind and caught up by %d merges, want 1\n%s",
				returning.name, rep.logTotal-int64(held), n, tailFile(returning.proc().log, 20))
		}
		sameAsPrimary(returning, addr)
		t.Logf("%s held %d messages, came back %d behind, caught up by merge; digest equal to the primary's",
			returning.name, held, rep.logTotal-int64(held))
		if err := returning.proc().stop(30 * time.Second); err != nil {
			t.Errorf("%s: graceful stop: %v", returning.name, err)
		}
	})

	// 8. The end: nothing lost, nothing applied twice; both stop cleanly and
	// their files are equal offline too.
	phase("final checks", func() {
		finishProbe()
		produced := int64(rep.avroSent + rep.jsonSent)
		if rep.logTotal < produced {
			t.Errorf("the topics hold %d messages, %d were acknowledged", rep.logTotal, produced)
		} else if rep.logTotal > produced {
			t.Logf("the topics hold %d messages for %d acknowledged sends: the producer retried some (at-least-once)", rep.logTotal, produced)
		}
		for _, sv := range []*service{s1, s2} {
			start := time.Now()
			if err := sv.proc().stop(30 * time.Second); err != nil {
				t.Errorf("%s: graceful stop: %v\n%s", sv.name, err, tailFile(sv.proc().log, 20))
			}
			t.Logf("%s stopped (SIGTERM, exit 0) in %v", sv.name, time.Since(start).Round(10*time.Millisecond))
			o, err := sv.inspectOffline()
			if err != nil {
				t.Fatal(err)
			}
			if o.Applied != uint64(rep.logTotal) {
				t.Errorf("%s: %d messages applied on disk, the topics hold %d", sv.name, o.Applied, rep.logTotal)
			}
		}
		if out, err := s.run(time.Minute, "diff", s.bin, "diff", s1.dataDir, s2.dataDir); err != nil {
			t.Errorf("enrollstatus diff of the two replicas: %v\n%s", err, out)
		}
	})

	total := time.Since(began).Round(time.Second)
	merges, mergesDone := s1.logCount(`"catch-up (merge) started"`), s1.logCount(`"catch-up (merge) done`)
	var topicsOut []string
	for _, tp := range topicList() {
		topicsOut = append(topicsOut, fmt.Sprintf("%s=%d", tp, rep.byTopic[tp]))
	}
	lines := []string{
		fmt.Sprintf("events produced: %d (%d by the real Open edX producer, %d by kcat): %s",
			rep.avroSent+rep.jsonSent, rep.avroSent, rep.jsonSent, strings.Join(topicsOut, " ")),
		fmt.Sprintf("messages on the topics: %d; messages applied: %d (each replica)", rep.logTotal, rep.applied),
		fmt.Sprintf("crashes survived (SIGKILL): %d during ingest, %d more during a broker outage", rep.crashes, rep.outageRestarts),
		fmt.Sprintf("catch-ups of the primary by merge: %d started, %d done (the others were cut by a kill)", merges, mergesDone),
		fmt.Sprintf("broker restarts: %d; %s", rep.brokerRestarts, strings.Join(rep.outages, "; ")),
		fmt.Sprintf("partitions added: %d", rep.partitionsAdded),
		fmt.Sprintf("users compared: %d per round, %d rounds; mismatches: %d", rep.usersCompared, rep.rounds, rep.mismatches),
		fmt.Sprintf("background requests: %s", rep.probe),
		fmt.Sprintf("phases: %s; total %v", strings.Join(rep.phases, ", "), total),
	}
	for _, l := range lines {
		t.Log(l)
	}
	fmt.Printf("E2E SUMMARY: events=%d messages=%d applied=%d crashes=%d primary_merges=%d/%d broker_restarts=%d partitions_added=%d users_compared=%d rounds=%d mismatches=%d total=%v\n",
		rep.avroSent+rep.jsonSent, rep.logTotal, rep.applied, rep.crashes, mergesDone, merges, rep.brokerRestarts, rep.partitionsAdded,
		rep.usersCompared, rep.rounds, rep.mismatches, total)
}

// label returns a label's value in a sample key such as
// enrollstatus_events_total{outcome="applied",topic="t",type="x"}.
func label(key, name string) string {
	i := strings.Index(key, name+`="`)
	if i < 0 {
		return ""
	}
	rest := key[i+len(name)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// split cuts recs into n consecutive chunks of nearly equal size.
func split(recs []record, n int) [][]record {
	var out [][]record
	for i := range n {
		out = append(out, recs[len(recs)*i/n:len(recs)*(i+1)/n])
	}
	return out
}

// appliedOnDisk is the messages_applied of a replica's stopped projection.
func appliedOnDisk(t *testing.T, sv *service) uint64 {
	t.Helper()
	o, err := sv.inspectOffline()
	if err != nil {
		t.Fatalf("%s: %v", sv.name, err)
	}
	return o.Applied
}
