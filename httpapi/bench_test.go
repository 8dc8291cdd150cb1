package httpapi_test

import (
	"fmt"
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
