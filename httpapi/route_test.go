package httpapi_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/projection"
)

const (
	notFound         = `{"detail":"Not found."}`
	notAuthenticated = `{"detail":"Authentication credentials were not provided."}`
	forbidden        = `{"detail":"You do not have permission to perform this action."}`
	notAcceptable    = `{"detail":"Could not satisfy the request Accept header."}`
)

// TestRoute walks the LMS's routing and check order, byte for byte.
func TestRoute(t *testing.T) {
	e := startServer(t, nil)
	e.store.set(func(f *fakeStore) {
		f.users["josé"] = []projection.Status{{CourseID: "c:1"}}
		f.users["a b"] = []projection.Status{{CourseID: "c:2", RecentlyActive: true}}
		f.users["a+b"] = []projection.Status{{CourseID: "c:3"}}
	})
	alice := auth(t, "alice")
	const path = "/api/mobile/v4/users/alice/enrollments_status/"
	one := `[{"course_id":"c:1","course_name":null,"recently_active":false}]`

	tests := []struct {
		name    string
		method  string
		target  string
		headers []string
		code    int
		body    string
	}{
		{"v4", "GET", path, alice, 200, demoBody},
		{"v3", "GET", "/api/mobile/v3/users/alice/enrollments_status/", alice, 200, demoBody},
		{"v2", "GET", "/api/mobile/v2/users/alice/enrollments_status/", alice, 200, demoBody},
		{"v1", "GET", "/api/mobile/v1/users/alice/enrollments_status/", alice, 200, demoBody},
		{"v0.5", "GET", "/api/mobile/v0.5/users/alice/enrollments_status/", alice, 200, demoBody},
		{"v5", "GET", "/api/mobile/v5/users/alice/enrollments_status/", alice, 404, notFound},
		{"V4", "GET", "/api/mobile/V4/users/alice/enrollments_status/", alice, 404, notFound},
		{"v0x5", "GET", "/api/mobile/v0x5/users/alice/enrollments_status/", alice, 404, notFound},
		{"v0.6", "GET", "/api/mobile/v0.6/users/alice/enrollments_status/", alice, 404, notFound},
		{"no version", "GET", "/api/mobile//users/alice/enrollments_status/", alice, 404, notFound},
		{"double slash", "GET", "/api/mobile/v4//users/alice/enrollments_status/", alice, 404, notFound},
		{"empty username", "GET", "/api/mobile/v4/users//enrollments_status/", alice, 404, notFound},
		{"query string ignored", "GET", path + "?org=edX&status=x", alice, 200, demoBody},
		{"suffix after the slash", "GET", path + "xyz", alice, 200, demoBody},
		{"deeper suffix", "GET", path + "a/b/../c?x=1", alice, 200, demoBody},
		{"prefix of enrollments_status", "GET", "/api/mobile/v4/users/alice/enrollments_statusX/", alice, 404, notFound},
		{"user detail (not ours)", "GET", "/api/mobile/v4/users/alice", alice, 404, notFound},
		{"users list", "GET", "/api/mobile/v4/users/alice/", alice, 404, notFound},
		{"root", "GET", "/", alice, 404, notFound},
		{"unknown path", "GET", "/api/v1/enrollments", alice, 404, notFound},
		{"api mobile", "GET", "/api/mobile", alice, 404, notFound},
		{"case of the prefix", "GET", "/API/mobile/v4/users/alice/enrollments_status/", alice, 404, notFound},

		// Usernames match [\w .@_+-]+ on the decoded path.
		{"percent-encoded letters", "GET", "/api/mobile/v4/users/%61lice/enrollments_status/", alice, 200, demoBody},
		{"encoded prefix", "GET", "/api/%6Dobile/v4/users/alice/enrollments_status/", alice, 200, demoBody},
		{"unicode", "GET", "/api/mobile/v4/users/Jos%C3%A9/enrollments_status/", auth(t, "José"), 200, one},
		{"space", "GET", "/api/mobile/v4/users/a%20b/enrollments_status/", auth(t, "a b"), 200,
			`[{"course_id":"c:2","course_name":null,"recently_active":true}]`},
		{"plus is not a space in a path", "GET", "/api/mobile/v4/users/a+b/enrollments_status/", auth(t, "a+b"), 200,
			`[{"course_id":"c:3","course_name":null,"recently_active":false}]`},
		{"dots, at, dash, underscore", "GET", "/api/mobile/v4/users/a.b@c-d_e/enrollments_status/", auth(t, "a.b@c-d_e"), 200, "[]"},
		{"encoded slash is no username", "GET", "/api/mobile/v4/users/a%2Fb/enrollments_status/", auth(t, "a/b"), 404, notFound},
		{"encoded traversal", "GET", "/api/mobile/v4/users/..%2F..%2F..%2Fhealthz/enrollments_status/", alice, 404, notFound},
		{"dot dot", "GET", "/api/mobile/v4/users/../enrollments_status/", auth(t, ".."), 200, "[]"},
		{"invalid UTF-8", "GET", "/api/mobile/v4/users/%FF/enrollments_status/", alice, 404, notFound},
		{"NUL", "GET", "/api/mobile/v4/users/a%00b/enrollments_status/", alice, 404, notFound},
		{"newline", "GET", "/api/mobile/v4/users/a%0Ab/enrollments_status/", alice, 404, notFound},
		{"quote", "GET", "/api/mobile/v4/users/a%22b/enrollments_status/", alice, 404, notFound},
		{"combining mark", "GET", "/api/mobile/v4/users/i%CC%87/enrollments_status/", alice, 404, notFound},

		// Case-insensitive match with Python's lower().
		{"upper-case URL", "GET", "/api/mobile/v4/users/ALICE/enrollments_status/", alice, 200, demoBody},
		{"upper-case token", "GET", path, auth(t, "ALICE"), 200, demoBody},
		{"dotted capital I matches its Python lower", "GET", "/api/mobile/v4/users/%C4%B0NCI/enrollments_status/", auth(t, "İnci"), 200, "[]"},
		{"dotted capital I is not plain i", "GET", "/api/mobile/v4/users/inci/enrollments_status/", auth(t, "İnci"), 403, forbidden},
		{"final sigma", "GET", "/api/mobile/v4/users/" + escape("οδος") + "/enrollments_status/", auth(t, "ΟΔΟΣ"), 200, "[]"},
		{"non-final sigma at the end", "GET", "/api/mobile/v4/users/" + escape("οδοσ") + "/enrollments_status/", auth(t, "ΟΔΟΣ"), 403, forbidden},
		{"dotted capitals differ from one", "GET", "/api/mobile/v4/users/%C4%B0NC%C4%B0/enrollments_status/", auth(t, "İnci"), 403, forbidden},
		{"Kelvin sign lowers to k, as in Python", "GET", "/api/mobile/v4/users/k/enrollments_status/", auth(t, "\u212a"), 200, "[]"},

		// Check order: URL, authentication, permission, method.
		{"no credentials", "GET", path, nil, 401, notAuthenticated},
		{"bad version before auth", "GET", "/api/mobile/v9/users/alice/enrollments_status/", nil, 404, notFound},
		{"someone else", "GET", path, auth(t, "bob"), 403, forbidden},
		{"someone else, unknown user", "GET", "/api/mobile/v4/users/nobody/enrollments_status/", alice, 403, forbidden},
		{"own unknown user", "GET", "/api/mobile/v4/users/nobody/enrollments_status/", auth(t, "nobody"), 200, "[]"},
		{"POST unauthenticated", "POST", path, nil, 401, notAuthenticated},
		{"POST someone else", "POST", path, auth(t, "bob"), 403, forbidden},
		{"POST own", "POST", path, alice, 405, `{"detail":"Method \"POST\" not allowed."}`},
		{"PUT own", "PUT", path, alice, 405, `{"detail":"Method \"PUT\" not allowed."}`},
		{"PATCH own", "PATCH", path, alice, 405, `{"detail":"Method \"PATCH\" not allowed."}`},
		{"DELETE own", "DELETE", path, alice, 405, `{"detail":"Method \"DELETE\" not allowed."}`},
		{"unknown method own", "PURGE", path, alice, 405, `{"detail":"Method \"PURGE\" not allowed."}`},
		{"unknown method unauthenticated", "PURGE", path, nil, 401, notAuthenticated},
		{"OPTIONS unauthenticated", "OPTIONS", path, nil, 401, notAuthenticated},
		{"OPTIONS someone else", "OPTIONS", path, auth(t, "bob"), 403, forbidden},
		{"OPTIONS own", "OPTIONS", path, alice, 200,
			`{"name":"User Enrollments Status","description":"Get information about the user's enrollments status: ` +
				`for each active enrollment, whether the user enrolled in the course or completed a block in it within ` +
				`the last 30 days.","renders":["application/json"],"parses":["application/json"]}`},
		{"POST on a bad path", "POST", "/api/mobile/v4/users/a%2Fb/enrollments_status/", alice, 404, notFound},
		// DRF negotiates the content before it authenticates; the LMS renders
		// JSON only, so an Accept that excludes it is 406, before 401.
		{"Accept text/html", "GET", path, withAccept(alice, "text/html"), 406, notAcceptable},
		{"Accept text/html unauthenticated", "GET", path, withAccept(nil, "text/html"), 406, notAcceptable},
		{"Accept text/html, POST unauthenticated", "POST", path, withAccept(nil, "text/html"), 406, notAcceptable},
		{"Accept text/html, OPTIONS", "OPTIONS", path, withAccept(alice, "text/html"), 406, notAcceptable},
		{"Accept application/xml", "GET", path, withAccept(alice, "application/xml"), 406, notAcceptable},
		{"Accept *", "GET", path, withAccept(alice, "*"), 406, notAcceptable},
		{"Accept empty", "GET", path, withAccept(alice, ""), 406, notAcceptable},
		{"Accept json among others", "GET", path, withAccept(alice, "text/html, application/json;q=0.1"), 200, demoBody},
		{"Accept json with a charset, in capitals", "GET", path, withAccept(alice, " Application/JSON ; charset=utf-8"), 200, demoBody},
		{"Accept application/*", "GET", path, withAccept(alice, "application/*"), 200, demoBody},
		{"Accept */json", "GET", path, withAccept(alice, "*/json"), 200, demoBody},
		{"Accept */*", "GET", path, withAccept(alice, "text/html,*/*;q=0.8"), 200, demoBody},
		{"Accept json q=0 (DRF ignores q)", "GET", path, withAccept(alice, "application/json;q=0"), 200, demoBody},
		{"two Accept headers", "GET", path, withAccept(withAccept(alice, "text/html"), "application/json"), 200, demoBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.target, tt.headers...)
			if r.code != tt.code || r.body != tt.body {
				t.Fatalf("%s %s = %d %s\nwant %d %s", tt.method, tt.target, r.code, r.body, tt.code, tt.body)
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if tt.code == 404 {
				return
			}
			// DRF's headers on every answer of the view.
			if got := r.header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
				t.Errorf("Allow = %q", got)
			}
			if got := r.header.Get("Vary"); got != "Accept" {
				t.Errorf("Vary = %q", got)
			}
			if got := r.header.Get("WWW-Authenticate"); (tt.code == 401) != (got == `JWT realm="api"`) {
				t.Errorf("WWW-Authenticate = %q on %d", got, tt.code)
			}
			if got := r.header.Get("Content-Length"); got != strconv.Itoa(len(tt.body)) {
				t.Errorf("Content-Length = %q, body %d bytes", got, len(tt.body))
			}
		})
	}
}

// withAccept returns headers with one more Accept header.
func withAccept(headers []string, accept string) []string {
	return append(slices.Clone(headers), "Accept", accept)
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(s[i])|0x100, 16)[1:]))
	}
	return b.String()
}

// TestAppendSlash follows Django's APPEND_SLASH: a 301 to the path with a
// slash, query kept, before authentication and whatever the method.
func TestAppendSlash(t *testing.T) {
	e := startServer(t, nil)
	tests := []struct {
		method, target, location string
	}{
		{"GET", "/api/mobile/v4/users/alice/enrollments_status", "/api/mobile/v4/users/alice/enrollments_status/"},
		{"GET", "/api/mobile/v0.5/users/alice/enrollments_status?a=1&b=%20", "/api/mobile/v0.5/users/alice/enrollments_status/?a=1&b=%20"},
		{"POST", "/api/mobile/v4/users/alice/enrollments_status", "/api/mobile/v4/users/alice/enrollments_status/"},
		{"HEAD", "/api/mobile/v4/users/alice/enrollments_status", "/api/mobile/v4/users/alice/enrollments_status/"},
		{"GET", "/api/mobile/v4/users/a%20b/enrollments_status", "/api/mobile/v4/users/a%20b/enrollments_status/"},
		{"GET", "/api/mobile/v4/users/%61+b@c/enrollments_status", "/api/mobile/v4/users/a+b@c/enrollments_status/"},
		{"GET", "/api/mobile/v4/users/Jos%c3%a9/enrollments_status", "/api/mobile/v4/users/Jos%C3%A9/enrollments_status/"},
	}
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.target)
		if r.code != http.StatusMovedPermanently || r.header.Get("Location") != tt.location || r.body != "" {
			t.Errorf("%s %s = %d Location %q body %q; want 301 %q", tt.method, tt.target, r.code,
				r.header.Get("Location"), r.body, tt.location)
		}
	}
	for _, target := range []string{
		"/api/mobile/v9/users/alice/enrollments_status",
		"/api/mobile/v4/users/a%2Fb/enrollments_status",
		"/api/mobile/v4/users/alice/enrollments",
	} {
		if r := e.do(t, "GET", target); r.code != 404 || r.body != notFound {
			t.Errorf("GET %s = %d %s; want 404", target, r.code, r.body)
		}
	}
}

func TestHead(t *testing.T) {
	e := startServer(t, nil)
	const path = "/api/mobile/v4/users/alice/enrollments_status/"
	r := e.do(t, "HEAD", path, auth(t, "alice")...)
	if r.code != 200 || r.body != "" {
		t.Fatalf("HEAD = %d %q; want 200 and no body", r.code, r.body)
	}
	if got := r.header.Get("Content-Length"); got != strconv.Itoa(len(demoBody)) {
		t.Errorf("HEAD Content-Length = %q; want the GET body's %d", got, len(demoBody))
	}
	if r.header.Get("X-Enrollstatus-Lag") == "" {
		t.Error("HEAD lacks the freshness headers")
	}
	if r := e.do(t, "HEAD", path); r.code != 401 || r.body != "" {
		t.Errorf("HEAD unauthenticated = %d %q", r.code, r.body)
	}
}
