package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
	"github.com/enrollstatus/enrollstatus/projection"
)

// discard is a ResponseWriter that keeps nothing, so that a benchmark
// measures the handler, not a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func benchHandler(b *testing.B, mutate func(*httpapi.Config), authorization string) {
	benchHandlerTokens(b, mutate, []string{authorization})
}

// benchHandlerTokens sends alice's status request with each Authorization
// value in turn.
func benchHandlerTokens(b *testing.B, mutate func(*httpapi.Config), authorizations []string) {
	srv, e := newServer(b, mutate)
	b.Cleanup(func() { _ = srv.Shutdown(b.Context()) })
	courses := make([]projection.Status, 10)
	for i := range courses {
		courses[i] = projection.Status{
			CourseID: "course-v1:edX+C" + string(rune('A'+i)) + "+2025", CourseName: "Course", HasCourseName: true,
			RecentlyActive: i%2 == 0,
		}
	}
	e.store.users["alice"] = courses
	e.store.fresh = projection.Freshness{LastEventTime: now.Add(-time.Second), CommittedAt: now, Applied: 1}
	e.store.quiet = true // nothing recorded, nothing copied: the handler's cost
	h := srv.Handler()
	reqs := make([]*http.Request, len(authorizations))
	for i, a := range authorizations {
		reqs[i] = httptest.NewRequest("GET", "/api/mobile/v4/users/alice/enrollments_status/", nil)
		reqs[i].Header.Set("Authorization", a)
	}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		i++
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkStatusHandler is one status request through the whole handler
// (routing, HS256 token, fake store, freshness headers, encoding, metrics).
func BenchmarkStatusHandler(b *testing.B) {
	benchHandler(b, nil, "JWT "+token(b, "alice"))
}

// BenchmarkStatusHandlerRS256 is the same with an RS256 token from a JWK set.
func BenchmarkStatusHandlerRS256(b *testing.B) {
	k := jwttest.RSAKey(0)
	set := string(jwttest.JWKS(b, jwttest.Key{KID: "k0", Public: &k.PublicKey}))
	tok := jwttest.Sign(b, jwt.SigningMethodRS256, k, "k0", jwttest.Claims("alice", now))
	benchHandler(b, func(c *httpapi.Config) { c.JWT.JWKS = set }, "JWT "+tok)
}

// lmsClaims are the claims of a token as the LMS issues it
// (edx-drf-extensions: 17 claims, ~640 bytes once signed); i makes each
// token distinct, as every login's is.
func lmsClaims(username string, i int) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": "openedx", "iss": "https://lms.example.com/oauth2", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"preferred_username": username, "sub": fmt.Sprintf("%032x", i), "email": username + "@example.com",
		"email_verified": true, "name": "Learner " + username, "given_name": "", "family_name": "",
		"administrator": false, "superuser": false, "version": "1.2.0", "scopes": []string{"read", "write", "email", "profile"},
		"filters": []string{"user:me"}, "is_restricted": false, "grant_type": "password",
	}
}

// BenchmarkStatusHandlerManyTokens is BenchmarkStatusHandler with 50,000
// distinct LMS-shaped tokens in rotation, more than the verifier's cache of
// verified tokens holds: nearly every request verifies its token afresh, as
// under the query benchmark's load.
func BenchmarkStatusHandlerManyTokens(b *testing.B) {
	const n = 50_000
	auths := make([]string, n)
	for i := range auths {
		auths[i] = "JWT " + jwttest.HS256(b, secret, lmsClaims("alice", i))
	}
	benchHandlerTokens(b, func(c *httpapi.Config) {
		c.JWT.Issuers, c.JWT.Audiences = []string{"https://lms.example.com/oauth2"}, []string{"openedx"}
	}, auths)
}

// BenchmarkServeConn is BenchmarkStatusHandler through the server's own
// http.Server, over an in-memory connection: what it adds is net/http's
// reading of the request and writing of the answer (the header map cloned,
// sorted and written).
func BenchmarkServeConn(b *testing.B) {
	srv, e := newServer(b, nil)
	e.store.users["alice"] = demoStatuses()
	e.store.fresh = projection.Freshness{LastEventTime: now.Add(-time.Second), CommittedAt: now, Applied: 1}
	e.store.quiet = true
	serveConn(b, srv)
}

// server is what serveConn needs of an HTTP server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// serveConn sends alice's status request, with her token, through srv
// b.N times over one in-memory keep-alive connection, and fails unless
// every answer is 200.
func serveConn(b *testing.B, srv server) {
	req := []byte("GET /api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\n" +
		"Accept: application/json\r\nAuthorization: JWT " + token(b, "alice") + "\r\n\r\n")
	ln := &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Shutdown(b.Context())
		<-done
	})
	c := newMemConn(req)
	b.ReportAllocs()
	b.ResetTimer()
	c.serve(ln, b.N)
	b.StopTimer()
	if c.ok != b.N {
		b.Fatalf("%d answers of %d were 200: %q", c.ok, b.N, c.last)
	}
}

// memListener hands out memConns.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// memConn is a client sending req, then waiting for the answer, n times,
// as a keep-alive connection would; reads block until the answer is
// written or a read deadline passes, as net/http expects of a net.Conn.
type memConn struct {
	req      []byte
	mu       sync.Mutex
	cond     *sync.Cond
	left     int    // requests still to send
	pending  []byte // of the request being sent
	waiting  bool   // for an answer
	deadline time.Time
	closed   chan struct{}
	ok       int
	last     []byte
}

func newMemConn(req []byte) *memConn {
	c := &memConn{req: req, closed: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// serve sends n requests through ln and waits until the server closes the
// connection after the last answer.
func (c *memConn) serve(ln *memListener, n int) {
	c.left = n
	ln.conns <- c
	<-c.closed
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		default:
		}
		switch {
		case len(c.pending) > 0:
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			c.waiting = len(c.pending) == 0
			return n, nil
		case !c.waiting && c.left == 0:
			return 0, io.EOF
		case !c.waiting:
			c.pending, c.left = c.req, c.left-1
			continue
		case !c.deadline.IsZero() && !time.Now().Before(c.deadline):
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
}

// Write takes one whole answer (they fit net/http's buffer).
func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bytes.HasPrefix(p, []byte("HTTP/1.1 200 ")) {
		c.ok++
	} else {
		c.last = append(c.last[:0], p...)
	}
	c.waiting = false
	c.cond.Broadcast()
	return len(p), nil
}

func (c *memConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
	default:
		close(c.closed)
		c.cond.Broadcast()
	}
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	c.cond.Broadcast()
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
