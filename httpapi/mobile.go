package httpapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The LMS's URL patterns for the view, joined (lms/urls.py,
// mobile_api/urls.py, mobile_api/users/urls.py):
//
//	^api/mobile/(?P<api_version>v(4|3|2|1|0.5))/users/(?P<username>[\w .@_+-]+)/enrollments_status/
//
// Django matches them against the percent-decoded path, and the last one has
// no $: anything after "enrollments_status/" still reaches the view.
const (
	mobilePrefix = "/api/mobile/"
	// statusRoute and slashRoute are the metric labels of the view and of
	// its APPEND_SLASH redirect; unmatchedRoute labels every path no route
	// takes, so that no label ever holds a username or a made-up path.
	statusRoute    = "/api/mobile/{version}/users/{username}/enrollments_status/"
	slashRoute     = "/api/mobile/{version}/users/{username}/enrollments_status"
	unmatchedRoute = "unmatched"
)

// versions are the API versions the route answers, all alike.
var versions = []string{"v4", "v3", "v2", "v1", "v0.5"}

// matchStatus matches a decoded path against the view's pattern. It returns
// the username and whether the path routes to the view; when it does not,
// slash reports whether the path with "/" appended would, which is when
// Django's APPEND_SLASH redirects.
func matchStatus(path string) (username string, match, slash bool) {
	rest, ok := strings.CutPrefix(path, mobilePrefix)
	if !ok {
		return "", false, false
	}
	version, rest, ok := strings.Cut(rest, "/")
	if !ok || !validVersion(version) {
		return "", false, false
	}
	rest, ok = strings.CutPrefix(rest, "users/")
	if !ok {
		return "", false, false
	}
	// [\w .@_+-]+ cannot hold a "/": the username ends at the first one.
	username, rest, ok = strings.Cut(rest, "/")
	if !ok || !projection.ValidUsername(username) {
		return "", false, false
	}
	if strings.HasPrefix(rest, "enrollments_status/") {
		return username, true, false
	}
	return username, false, rest == "enrollments_status"
}

func validVersion(v string) bool {
	for _, w := range versions {
		if v == w {
			return true
		}
	}
	return false
}

// mobile is the LMS's UserEnrollmentsStatus view, with Django REST
// framework's order of checks: URL (404), content negotiation (406),
// authentication (401), permission (403), method (405), then the answer.
func (s *Server) mobile(c echo.Context) error {
	r := c.Request()
	username, match, slash := matchStatus(r.URL.Path)
	if !match {
		if slash {
			c.SetPath(slashRoute)
			return appendSlash(c)
		}
		c.SetPath(unmatchedRoute)
		return errNotFound
	}
	c.SetPath(statusRoute)

	// DRF sets these on every answer of an APIView.
	h := c.Response().Header()
	h["Allow"] = allowView
	h["Vary"] = varyAccept

	if !acceptsJSON(r.Header["Accept"]) {
		return &Error{Code: ENOTACCEPTABLE, Detail: detailNotAcceptable}
	}
	user, err := s.authenticate(c)
	if err != nil {
		return err
	}
	// IsUserInUrl: request.user.username.lower() == username.lower(), with
	// Python's lower(). No staff bypass.
	if projection.LowerUsername(user.Username) != projection.LowerUsername(username) {
		return &Error{Code: EFORBIDDEN, Detail: detailForbidden}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.status(c, username, user.Staff)
	case http.MethodOptions:
		return writeJSON(c, http.StatusOK, optionsBody)
	}
	return methodNotAllowed(r.Method)
}

// optionsBody is DRF's SimpleMetadata for the view.
var optionsBody = func() []byte {
	b := []byte(`{"name":"User Enrollments Status","description":`)
	b = appendString(b, "Get information about the user's enrollments status: for each active "+
		"enrollment, whether the user enrolled in the course or completed a block in it "+
		"within the last 30 days.")
	return append(b, `,"renders":["application/json"],"parses":["application/json"]}`...)
}()

// appendSlash answers as Django's CommonMiddleware does with APPEND_SLASH:
// 301 to the path with a slash, whatever the method and before any
// authentication. The Location is the decoded path re-escaped as Django's
// escape_uri_path does, then the query string unchanged.
func appendSlash(c echo.Context) error {
	r := c.Request()
	loc := escapeURIPath(r.URL.Path) + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	h := c.Response().Header()
	h["Location"] = []string{loc}
	h["Content-Length"] = []string{"0"}
	c.Response().WriteHeader(http.StatusMovedPermanently)
	return nil
}

// escapeURIPath is Django's escape_uri_path: Python's quote() with the safe
// characters /:@&+$,-_.!~*'() and upper-case hex.
func escapeURIPath(p string) string {
	const upperHex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) + 16)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("/:@&+$,-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	return b.String()
}

// acceptsJSON is Django REST framework's DefaultContentNegotiation with the
// LMS's only renderer, JSONRenderer: the Accept header ("*/*" when there
// is none; several are joined by commas, as the WSGI server joins them) is
// split at every comma, and JSON is acceptable when one of the pieces,
// trimmed, its parameters (q included) cut off and lower-cased, has the
// main type "*" or "application" and the subtype "*" or "json".
func acceptsJSON(values []string) bool {
	if values == nil {
		return true
	}
	for _, v := range values {
		for r := range strings.SplitSeq(v, ",") {
			r, _, _ = strings.Cut(r, ";")
			main, sub, _ := strings.Cut(strings.ToLower(strings.TrimSpace(r)), "/")
			if (main == "*" || main == "application") && (sub == "*" || sub == "json") {
				return true
			}
		}
	}
	return false
}
