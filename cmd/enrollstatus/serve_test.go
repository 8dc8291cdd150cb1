package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/projection"
)

const testSecret = "test-secret-test-secret"

type answer struct {
	CourseID       string  `json:"course_id"`
	CourseName     *string `json:"course_name"`
	RecentlyActive bool    `json:"recently_active"`
}

// startService runs serve against broker until the test ends or stop is
// called; stop returns serve's result. Each of with changes the
// configuration last.
func startService(t *testing.T, broker string, topics []string, dataDir string, with ...func(*Config)) (svc *service, stop func() error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Brokers = listFlag{broker}
	cfg.Topics = topics
	cfg.JWTSecrets = listFlag{testSecret}
	cfg.PollInterval = 200 * time.Millisecond
	cfg.BatchWait = 20 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	for _, f := range with {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *service, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serve(ctx, &cfg, log, started) }()
	select {
	case svc = <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return svc, stop
}

func get(t *testing.T, addr, username string) (int, []answer, http.Header) {
	t.Helper()
	tok, err := signToken(testSecret, tokenSpec{Username: username, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/mobile/v1/users/"+username+"/enrollments_status/", nil)
	req.Header.Set("Authorization", "JWT "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []answer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// TestServeEndToEnd produces synthetic Open edX traffic to a TCP
// Kafka-protocol broker and polls the real HTTP API on loopback until every
// user's answer equals the reference computed from the same history.
func TestServeEndToEnd(t *testing.T) {
	topics := []string{"dev-learning-course-enrollment-lifecycle", "dev-course-unenrollment-lifecycle",
		"dev-course-catalog-info-changed", "dev-analytics", "dev-enrollstatus-events"}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]

	svc, _ := startService(t, broker, topics, t.TempDir())

	now := time.Now().UTC()
	gen := synth.New(7, 150, 12, now)
	msgs := append(gen.Catalog(), gen.History(3000)...)
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	var out []kafka.Message
	for _, m := range msgs {
		out = append(out, kafka.Message{Topic: "dev-" + m.Topic, Key: m.Key, Value: m.Value})
	}
	if err := w.WriteMessages(context.Background(), out...); err != nil {
		t.Fatal(err)
	}

	dec := consumer.NewDecoder(nil)
	model := &reference.Model{}
	for _, m := range msgs {
		d, err := dec.Decode(consumer.Message{Value: m.Value})
		if err != nil {
			t.Fatal(err)
		}
		model.Add(d.Events...)
	}
	deadline := time.Now().Add(2 * time.Minute)
	users, nonEmpty := model.Usernames(), 0
	if len(users) < 100 {
		t.Fatalf("only %d users in the history", len(users))
	}
	for id, name := range users {
		want := model.Status(id, time.Now(), projection.DefaultPolicy())
		for {
			code, got, hdr := get(t, svc.httpAddr, name)
			if code == http.StatusOK && sameAnswer(got, want) {
				if len(got) > 0 {
					nonEmpty++
				}
				// An answer with courses comes from applied events, so it
				// says how fresh it is (an empty one may come before any).
				if len(got) > 0 && hdr.Get("X-Enrollstatus-Last-Event-Time") == "" {
					t.Fatalf("no freshness header on %v", hdr)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %s: got %d %+v, want %+v", name, code, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if nonEmpty < len(users)/2 {
		t.Fatalf("only %d of %d users have enrollments: the check proves little", nonEmpty, len(users))
	}

	// Someone else's data: 403, whether the user exists or not.
	tok, _ := signToken(testSecret, tokenSpec{Username: "learner1", TTL: time.Hour})
	for _, other := range []string{"learner2", "nobody-at-all"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+svc.httpAddr+"/api/mobile/v4/users/"+other+"/enrollments_status/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("learner1 asking for %s: %d, want 403", other, resp.StatusCode)
		}
	}
	// An unknown user asking for themself: 200 [].
	if code, got, _ := get(t, svc.httpAddr, "nobody-at-all"); code != http.StatusOK || len(got) != 0 {
		t.Fatalf("unknown user: %d %v, want 200 []", code, got)
	}
}

func sameAnswer(got []answer, want []reference.Entry) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.CourseID != w.CourseID || g.RecentlyActive != w.RecentlyActive ||
			(g.CourseName == nil) != (w.CourseName == nil) ||
			(g.CourseName != nil && *g.CourseName != *w.CourseName) {
			return false
		}
	}
	return true
}

// TestGracefulShutdown cancels a service under query load: in-flight
// requests finish, serve returns nil, and the store was closed (it reopens).
func TestGracefulShutdown(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dev-enrollstatus-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := t.TempDir()
	svc, stopService := startService(t, cluster.ListenAddrs()[0], []string{"dev-enrollstatus-events"}, dir)
	stop := make(chan struct{})
	failures := make(chan string, 100)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			tok, _ := signToken(testSecret, tokenSpec{Username: "learner1", TTL: time.Hour})
			req, _ := http.NewRequest(http.MethodGet, "http://"+svc.httpAddr+"/api/mobile/v4/users/learner1/enrollments_status/", nil)
			req.Header.Set("Authorization", "JWT "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // the listener closed: shutdown began
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte("[]")) {
				failures <- fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := stopService(); err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	close(stop)
	select {
	case f := <-failures:
		t.Fatalf("a request failed during shutdown: %s", f)
	default:
	}
	st, err := openReadOnly(dir)
	if err != nil {
		t.Fatalf("store not closed cleanly: %v", err)
	}
	st.Close()
}

// TestPprofListener: --pprof-addr serves Go's profiles on its own
// listener, which closes with the service; the API's address does not
// serve them.
func TestPprofListener(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dev-enrollstatus-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	svc, stop := startService(t, cluster.ListenAddrs()[0], []string{"dev-enrollstatus-events"}, t.TempDir(),
		func(c *Config) { c.PprofAddr = addr })
	status := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := status("http://" + addr + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof listener: %d %.200s", code, body)
	}
	if code, _ := status("http://" + svc.httpAddr + "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("the API's address answers /debug/pprof/ with %d, want 404", code)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return: the pprof listener kept it running")
	}
	if code, body := status("http://" + addr + "/debug/pprof/"); code != 0 {
		t.Fatalf("pprof listener still answers after shutdown: %d %.100s", code, body)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"ENROLLSTATUS_LIMIT": "7", "ENROLLSTATUS_TOPICS": "a, b", "ENROLLSTATUS_WINDOW": "48h"}
	cfg := DefaultConfig()
	fs := newFlagSet(&cfg)
	if err := parseFlags(fs, []string{"--limit", "9"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Limit != 9 || strings.Join(cfg.Topics, "|") != "a|b" || cfg.Window != 48*time.Hour {
		t.Fatalf("limit %d topics %q window %v: want the flag over the env, and the env over defaults", cfg.Limit, cfg.Topics, cfg.Window)
	}
	if got := cfg.consumerConfig().ClientID; got != "enrollstatus" {
		t.Fatalf("default client id %q, want enrollstatus", got)
	}
	env["ENROLLSTATUS_CLIENT_ID"] = "enrollstatus-replica-2"
	cfg = DefaultConfig()
	if err := parseFlags(newFlagSet(&cfg), nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if got := cfg.consumerConfig().ClientID; got != "enrollstatus-replica-2" {
		t.Fatalf("client id %q: want the environment's to reach the consumer", got)
	}
	cfg = DefaultConfig()
	err := parseFlags(newFlagSet(&cfg), nil, func(k string) string {
		if k == "ENROLLSTATUS_LIMIT" {
			return "many"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "ENROLLSTATUS_LIMIT") {
		t.Fatalf("bad env value: %v, want an error naming ENROLLSTATUS_LIMIT", err)
	}
}

func TestValidateSaysWhatToFix(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MobileFilter = "sometimes"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "--mobile-filter") || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Fatalf("Validate() = %v, want errors naming --mobile-filter and --jwt-secret", err)
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"nonsense"}, func(string) string { return "" }, &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(stderr.String(), "Commands:") {
		t.Fatalf("unknown command: exit %d, stderr %q", exitCode(err), stderr.String())
	}
	stderr.Reset()
	err = run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, &stdout, &stderr)
	if exitCode(err) != 0 || !strings.Contains(stderr.String(), "ENROLLSTATUS_DATA_DIR") {
		t.Fatalf("serve --help: exit %d, output %q", exitCode(err), stderr.String())
	}
}
