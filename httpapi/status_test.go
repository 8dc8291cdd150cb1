package httpapi_test

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
	"github.com/enrollstatus/enrollstatus/projection"
)

const alicePath = "/api/mobile/v4/users/alice/enrollments_status/"

func TestStatusBody(t *testing.T) {
	e := startServer(t, nil)
	tricky := name("Курс <b>&amp;</b> \"quoted\" \\ \u2028\u2029 \t\n\x01 😀")
	tricky.CourseID = "course-v1:<x>+&+Ω"
	bad := name("bad \xff utf8")
	bad.CourseID, bad.RecentlyActive = "c:bad", true
	e.store.set(func(f *fakeStore) { f.users["alice"] = []projection.Status{tricky, bad} })
	r := e.do(t, "GET", alicePath, auth(t, "alice")...)
	want := `[{"course_id":"course-v1:<x>+&+Ω","course_name":"Курс <b>&amp;</b> \"quoted\" \\ \u2028\u2029 \t\n\u0001 😀","recently_active":false},` +
		`{"course_id":"c:bad","course_name":"bad \ufffd utf8","recently_active":true}]`
	if r.code != 200 || r.body != want {
		t.Fatalf("= %d\n%s\nwant\n%s", r.code, r.body, want)
	}

	e.store.set(func(f *fakeStore) { f.users["alice"] = nil })
	if r := e.do(t, "GET", alicePath, auth(t, "alice")...); r.code != 200 || r.body != "[]" {
		t.Fatalf("empty = %d %s", r.code, r.body)
	}
}

// TestStatusAsks checks what the store is asked: the URL's username and the
// clock's now.
func TestStatusAsks(t *testing.T) {
	e := startServer(t, nil)
	e.do(t, "GET", "/api/mobile/v4/users/ALICE/enrollments_status/", auth(t, "alice")...)
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if len(e.store.asked) != 1 || e.store.asked[0] != "ALICE" || !e.store.at[0].Equal(now) {
		t.Fatalf("store asked %q at %v", e.store.asked, e.store.at)
	}
}

// TestStaffLiftsTheMobileFilter: a token whose administrator claim is true
// (the LMS's is_staff) asks the store for every course, mobile or not; any
// other value does not; and staff still see only themselves.
func TestStaffLiftsTheMobileFilter(t *testing.T) {
	e := startServer(t, nil)
	claims := jwttest.Claims("alice", now)
	for _, admin := range []any{true, false, "true", nil} {
		c := maps.Clone(claims)
		if admin != nil {
			c["administrator"] = admin
		}
		tok := jwttest.HS256(t, secret, c)
		if r := e.do(t, "GET", alicePath, "Authorization", "JWT "+tok); r.code != 200 {
			t.Fatalf("administrator %v: %d %s", admin, r.code, r.body)
		}
		if r := e.do(t, "GET", "/api/mobile/v4/users/bob/enrollments_status/", "Authorization", "JWT "+tok); r.code != 403 {
			t.Fatalf("administrator %v, another user: %d %s", admin, r.code, r.body)
		}
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if want := []bool{true, false, false, false}; !slices.Equal(e.store.staff, want) {
		t.Fatalf("store asked with staff %v, want %v", e.store.staff, want)
	}
}

func TestFreshnessHeaders(t *testing.T) {
	e := startServer(t, func(c *httpapi.Config) { c.StaleLag = 100 })
	last := time.Date(2025, 3, 1, 11, 59, 58, 123456789, time.FixedZone("CET", 3600))
	committed := time.Date(2025, 3, 1, 11, 59, 59, 0, time.UTC)
	tests := []struct {
		name                   string
		fresh                  projection.Freshness
		lag                    int64
		connected              bool
		last, committed, stale string
		lagHeader              string
	}{
		{"fresh", projection.Freshness{LastEventTime: last, CommittedAt: committed, Applied: 7}, 3, true,
			"2025-03-01T10:59:58.123456789Z", "2025-03-01T11:59:59Z", "false", "3"},
		{"at the threshold", projection.Freshness{LastEventTime: last, CommittedAt: committed}, 100, true,
			"2025-03-01T10:59:58.123456789Z", "2025-03-01T11:59:59Z", "false", "100"},
		{"lagging", projection.Freshness{LastEventTime: last, CommittedAt: committed}, 101, true,
			"2025-03-01T10:59:58.123456789Z", "2025-03-01T11:59:59Z", "true", "101"},
		{"disconnected", projection.Freshness{LastEventTime: last, CommittedAt: committed}, 0, false,
			"2025-03-01T10:59:58.123456789Z", "2025-03-01T11:59:59Z", "true", "0"},
		{"nothing applied yet", projection.Freshness{}, 0, true, "", "", "false", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.store.set(func(f *fakeStore) { f.fresh = tt.fresh })
			e.health.set(func(h *fakeHealth) { h.lag, h.connected = tt.lag, tt.connected })
			for _, m := range []string{"GET", "HEAD"} {
				r := e.do(t, m, alicePath, auth(t, "alice")...)
				h := r.header
				if r.code != 200 {
					t.Fatalf("%s = %d %s", m, r.code, r.body)
				}
				_, hasLast := h["X-Enrollstatus-Last-Event-Time"]
				_, hasCommitted := h["X-Enrollstatus-Committed-At"]
				if h.Get(httpapi.HeaderLastEventTime) != tt.last || hasLast != (tt.last != "") ||
					h.Get(httpapi.HeaderCommittedAt) != tt.committed || hasCommitted != (tt.committed != "") ||
					h.Get(httpapi.HeaderLag) != tt.lagHeader || h.Get(httpapi.HeaderStale) != tt.stale {
					t.Fatalf("%s headers: last %q committed %q lag %q stale %q", m,
						h.Get(httpapi.HeaderLastEventTime), h.Get(httpapi.HeaderCommittedAt),
						h.Get(httpapi.HeaderLag), h.Get(httpapi.HeaderStale))
				}
			}
		})
	}
	// Errors carry no freshness headers: they say nothing of the projection.
	r := e.do(t, "GET", alicePath)
	if r.header.Get(httpapi.HeaderStale) != "" {
		t.Error("a 401 carries freshness headers")
	}
}

func TestStoreFaults(t *testing.T) {
	e := startServer(t, nil)
	e.store.set(func(f *fakeStore) { f.err = errors.New("bbolt: database not open") })
	r := e.do(t, "GET", alicePath, auth(t, "alice")...)
	if r.code != 500 || r.body != `{"detail":"A server error occurred."}` {
		t.Fatalf("store error = %d %s", r.code, r.body)
	}
	if !strings.Contains(e.logs.String(), "database not open") {
		t.Errorf("the fault was not logged:\n%s", e.logs.String())
	}

	e.store.set(func(f *fakeStore) { f.err, f.panic = nil, true })
	r = e.do(t, "GET", alicePath, auth(t, "alice")...)
	if r.code != 500 || r.body != `{"detail":"A server error occurred."}` {
		t.Fatalf("store panic = %d %s", r.code, r.body)
	}
	if !strings.Contains(e.logs.String(), "store exploded") {
		t.Errorf("the panic was not logged:\n%s", e.logs.String())
	}
	// The server still answers.
	e.store.set(func(f *fakeStore) { f.panic = false })
	if r := e.do(t, "GET", alicePath, auth(t, "alice")...); r.code != 200 {
		t.Fatalf("after a panic: %d %s", r.code, r.body)
	}
}

// TestContentLength checks that every answer carries its length, either
// set by the handler or by net/http (which does for a body up to its
// buffer's size, 2048 bytes), never chunked: bodies around that size, and
// a large one, for GET and HEAD.
func TestContentLength(t *testing.T) {
	e := startServer(t, nil)
	const overhead = len(`[{"course_id":"c","course_name":"","recently_active":false}]`)
	for _, size := range []int{2000, 2046, 2047, 2048, 2049, 2050, 4096, 100_000} {
		st := name(strings.Repeat("n", size-overhead))
		st.CourseID = "c"
		e.store.set(func(f *fakeStore) { f.users["alice"] = []projection.Status{st} })
		r := e.do(t, "GET", alicePath, auth(t, "alice")...)
		if r.code != 200 || len(r.body) != size {
			t.Fatalf("GET, %d bytes: %d, %d bytes", size, r.code, len(r.body))
		}
		if got := r.header.Get("Content-Length"); got != strconv.Itoa(size) {
			t.Errorf("GET, %d bytes: Content-Length %q", size, got)
		}
		r = e.do(t, "HEAD", alicePath, auth(t, "alice")...)
		if got := r.header.Get("Content-Length"); r.code != 200 || got != strconv.Itoa(size) {
			t.Errorf("HEAD, %d bytes: %d, Content-Length %q", size, r.code, got)
		}
	}
}
