package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
	"github.com/enrollstatus/enrollstatus/projection"
)

// now is the clock of every test server: tokens and answers are computed at
// this instant, and no test waits for time to pass.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const secret = "test-lms-secret-0123456789abcdef"

// fakeStore answers from a map keyed by lower-cased username, like a store
// whose lookup is case-insensitive.
type fakeStore struct {
	mu    sync.Mutex
	users map[string][]projection.Status
	fresh projection.Freshness
	err   error
	panic bool
	asked []string
	at    []time.Time
	staff []bool
	// quiet: asked and at are not kept (benchmarks).
	quiet bool
}

func (f *fakeStore) StatusFunc(_ context.Context, q projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error {
	username, at := q.Username, q.Now
	f.mu.Lock()
	if f.panic {
		f.mu.Unlock()
		panic("store exploded")
	}
	if !f.quiet {
		f.asked = append(f.asked, username)
		f.at = append(f.at, at)
		f.staff = append(f.staff, q.Staff)
	}
	st, fresh, err := f.users[projection.LowerUsername(username)], f.fresh, f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if f.quiet {
		return fn(st, fresh)
	}
	// Lent, as the store lends its pages: a copy that is scribbled over
	// once fn returns, so that an answer that kept it would show.
	lent := slices.Clone(st)
	defer func() {
		for i := range lent {
			lent[i] = projection.Status{CourseID: "returned", CourseName: "returned"}
		}
	}()
	return fn(lent, fresh)
}

func (f *fakeStore) set(fn func(*fakeStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

type fakeHealth struct {
	mu        sync.Mutex
	ready     error
	lag       int64
	connected bool
}

func (h *fakeHealth) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

func (h *fakeHealth) Lag() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lag, h.connected
}

func (h *fakeHealth) set(fn func(*fakeHealth)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h)
}

func name(s string) projection.Status {
	return projection.Status{CourseName: s, HasCourseName: true}
}

func demoStatuses() []projection.Status {
	a := name("Demonstration Course")
	a.CourseID, a.RecentlyActive = "course-v1:edX+DemoX+Demo_Course", true
	b := projection.Status{CourseID: "course-v1:edX+Old+2019"}
	return []projection.Status{a, b}
}

const demoBody = `[{"course_id":"course-v1:edX+DemoX+Demo_Course","course_name":"Demonstration Course","recently_active":true},` +
	`{"course_id":"course-v1:edX+Old+2019","course_name":null,"recently_active":false}]`

// env is a running server on loopback and its fakes.
type env struct {
	srv    *httpapi.Server
	url    string
	store  *fakeStore
	health *fakeHealth
	reg    *prometheus.Registry
	logs   *syncBuffer
	client *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig() httpapi.Config {
	cfg := httpapi.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.JWT.Secrets = []string{secret}
	return cfg
}

// newServer builds a server with the fakes; mutate may change the config.
func newServer(t testing.TB, mutate func(*httpapi.Config)) (*httpapi.Server, *env) {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	e := &env{
		store: &fakeStore{users: map[string][]projection.Status{
			"alice": demoStatuses(),
		}},
		health: &fakeHealth{lag: 3, connected: true},
		reg:    prometheus.NewRegistry(),
		logs:   &syncBuffer{},
	}
	srv, err := httpapi.New(cfg, httpapi.Deps{
		Statuses:   e.store,
		Health:     e.health,
		Registerer: e.reg,
		Gatherer:   e.reg,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	e.srv = srv
	return srv, e
}

// startServer runs a server on a loopback port until the test ends.
func startServer(t testing.TB, mutate func(*httpapi.Config)) *env {
	t.Helper()
	srv, e := newServer(t, mutate)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	e.url = "http://" + ln.Addr().String()
	e.client = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

// token is a valid HS256 token for username.
func token(t testing.TB, username string) string {
	t.Helper()
	return jwttest.HS256(t, secret, jwttest.Claims(username, now))
}

// response is what a test reads of an answer.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends method to target, exactly as written (path and query, not
// re-escaped), with headers given as name, value pairs.
func (e *env) do(t testing.TB, method, target string, headers ...string) response {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Opaque, u.RawQuery = path, query
	req := &http.Request{Method: method, URL: u, Header: http.Header{}, Host: u.Host}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// auth is the Authorization header pair for username's token.
func auth(t testing.TB, username string) []string {
	return []string{"Authorization", "JWT " + token(t, username)}
}
