package httpapi_test

import (
	"net/http"
	"net/http/httptest"
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
	h := srv.Handler()
	req := httptest.NewRequest("GET", "/api/mobile/v4/users/alice/enrollments_status/", nil)
	req.Header.Set("Authorization", authorization)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
		e.store.asked, e.store.at = e.store.asked[:0], e.store.at[:0]
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
