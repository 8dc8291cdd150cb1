package httpapi_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/httpapi"
)

// raw sends bytes on a fresh connection and reads one answer.
func raw(t *testing.T, e *env, request string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOversized(t *testing.T) {
	e := startServer(t, func(c *httpapi.Config) {
		c.MaxHeaderBytes = 8 << 10
		c.MaxURLBytes = 2 << 10
	})
	tok := token(t, "alice")

	// Over MaxHeaderBytes, under twice it: the handler's JSON 431.
	r := e.do(t, "GET", alicePath, "Authorization", "JWT "+tok, "X-Filler", strings.Repeat("a", 9<<10))
	if r.code != 431 || r.body != `{"detail":"Request header fields too large."}` {
		t.Fatalf("big header = %d %s", r.code, r.body)
	}
	// Many small headers add up.
	var many []string
	for i := range 400 {
		many = append(many, "X-H"+strings.Repeat("x", i%7), strings.Repeat("v", 20))
	}
	if r := e.do(t, "GET", alicePath, many...); r.code != 431 {
		t.Fatalf("many headers = %d %s", r.code, r.body)
	}
	// Far over: net/http answers by itself, before any handler; in JSON too.
	resp, body := raw(t, e, "GET "+alicePath+" HTTP/1.1\r\nHost: x\r\nX-Filler: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	if resp.StatusCode != 431 || resp.Header.Get("Content-Type") != "application/json" || body != `{"detail":"Request header fields too large."}` {
		t.Fatalf("huge header = %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// A long request target: 414.
	long := alicePath + "?q=" + strings.Repeat("z", 3<<10)
	if r := e.do(t, "GET", long, "Authorization", "JWT "+tok); r.code != 414 || r.body != `{"detail":"Request-URI too long."}` {
		t.Fatalf("long URL = %d %s", r.code, r.body)
	}
	longPath := "/api/mobile/v4/users/" + strings.Repeat("a", 3<<10) + "/enrollments_status/"
	if r := e.do(t, "GET", longPath); r.code != 414 {
		t.Fatalf("long path = %d %s", r.code, r.body)
	}
	// A long token under the limits is just a bad token.
	if r := e.do(t, "GET", alicePath, "Authorization", "JWT "+strings.Repeat("A", 6<<10)); r.code != 401 {
		t.Fatalf("long token = %d %s", r.code, r.body)
	}
}

// TestMalformedRequests sends what no well-behaved client would: every
// answer is a 4xx with a JSON body {"detail": ...}, those net/http gives
// before any handler runs included, and the server keeps serving.
func TestMalformedRequests(t *testing.T) {
	e := startServer(t, nil)
	for _, req := range []string{
		"GET /api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\nAuthorization: JWT \x01\x02\r\n\r\n",
		"GET /api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\nAuthorization: JWT \xff\xfe\xfd\r\n\r\n",
		"GET /api/mobile/v4/users/al\x00ice/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /api/mobile/v4/users/%zz/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /api/mobile/v4/users/%/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://evil.example.com/api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"POST /api/mobile/v4/users/alice/enrollments_status/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\n\r\n",
	} {
		resp, body := raw(t, e, req)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || !isDetail(resp, body) {
			t.Errorf("%q = %d %q %s", req, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	// What net/http refuses by itself, in plain text and two of them with a
	// 5xx: JSON 4xx, saying why where net/http does.
	for req, want := range map[string]string{
		"GET / HTTP/9.9\r\nHost: x\r\n\r\n":                                               `{"detail":"Unsupported HTTP version."}`,
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n":           `{"detail":"Unsupported transfer encoding."}`,
		"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nHost: x\r\n\r\n":                    `{"detail":"Unsupported transfer encoding."}`,
		"GET /api/mobile/v4/users/abc%zz/enrollments_status/ HTTP/1.1\r\nHost: x\r\n\r\n": `{"detail":"Malformed request."}`,
		"GET / HTTP/1.1\r\n\r\n":                                                          `{"detail":"Malformed request: missing required Host header."}`,
		"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n":                                    `{"detail":"Malformed request."}`,
		"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n":                              `{"detail":"Malformed request."}`,
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n":                        `{"detail":"Malformed request."}`,
	} {
		resp, body := raw(t, e, req)
		if resp.StatusCode != 400 || body != want || !isDetail(resp, body) {
			t.Errorf("%q = %d %q %s; want 400 %s", req, resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
		}
	}
	if r := e.do(t, "GET", alicePath, auth(t, "alice")...); r.code != 200 {
		t.Fatalf("after malformed requests: %d", r.code)
	}
}

// TestSlowloris holds a connection open with half a request: the server
// cuts it off after ReadHeaderTimeout.
func TestSlowloris(t *testing.T) {
	e := startServer(t, func(c *httpapi.Config) { c.ReadHeaderTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the server did not close the connection: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestNewHTTPServer(t *testing.T) {
	cfg := httpapi.DefaultConfig()
	s := httpapi.NewHTTPServer(cfg, http.NotFoundHandler(), nil)
	if s.ReadHeaderTimeout != cfg.ReadHeaderTimeout || s.ReadTimeout != cfg.ReadTimeout ||
		s.WriteTimeout != cfg.WriteTimeout || s.IdleTimeout != cfg.IdleTimeout ||
		s.MaxHeaderBytes != 2*cfg.MaxHeaderBytes || s.ErrorLog == nil || !s.DisableGeneralOptionsHandler {
		t.Fatalf("NewHTTPServer = %+v", s)
	}
}

// isDetail reports whether an answer is a JSON error body, {"detail": ...}.
func isDetail(resp *http.Response, body string) bool {
	var v struct {
		Detail *string `json:"detail"`
	}
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") &&
		json.Unmarshal([]byte(body), &v) == nil && v.Detail != nil && *v.Detail != ""
}
