package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
)

// checkAnswer fails unless the answer is a client's: below 500, with a JSON
// body, and a "detail" in every error.
func checkAnswer(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s = %d %s", what, w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if w.Code == http.StatusMovedPermanently || w.Code == http.StatusNoContent {
		return // no body, as Django's redirect and echo's OPTIONS
	}
	if !json.Valid(body) {
		t.Fatalf("%s = %d with a body that is not JSON: %q", what, w.Code, body)
	}
	if w.Code >= 400 {
		var e struct {
			Detail *string `json:"detail"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Detail == nil {
			t.Fatalf("%s = %d without a detail: %s", what, w.Code, body)
		}
	}
}

func routerSeeds(t testing.TB) []string {
	return []string{
		"JWT " + token(t, "alice"),
		"Bearer " + token(t, "bob"),
		"JWT " + jwttest.None(jwttest.Claims("alice", now)),
		"JWT a.b.c",
		"Basic Zm9vOmJhcg==",
		"",
	}
}

// FuzzRouter throws arbitrary methods, request targets and Authorization
// headers at the handler, parsed by net/http as the server would.
func FuzzRouter(f *testing.F) {
	srv, _ := newServer(f, nil)
	h := srv.Handler()
	targets := []string{
		"/api/mobile/v4/users/alice/enrollments_status/",
		"/api/mobile/v0.5/users/alice/enrollments_status",
		"/api/mobile/v4/users/a%2Fb/enrollments_status/",
		"/api/mobile/v4/users/%C4%B0/enrollments_status/x?y=%zz",
		"/api/mobile/v4/users/../../enrollments_status/",
		"/healthz", "/readyz", "/metrics", "/admin/x", "*", "/", "//", "/%00",
		"http://h/api/mobile/v4/users/alice/enrollments_status/",
	}
	for i, target := range targets {
		for j, a := range routerSeeds(f) {
			f.Add([]string{"GET", "POST", "HEAD", "OPTIONS", "PURGE"}[(i+j)%5], target, a)
		}
	}
	f.Fuzz(func(t *testing.T, method, target, authorization string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization + "\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 itself
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == 200 && req.URL.Path == "/metrics" {
			return // Prometheus text, by design
		}
		checkAnswer(t, method+" "+target, w)
	})
}

// FuzzAuth throws arbitrary Authorization headers, unvalidated, at the view.
func FuzzAuth(f *testing.F) {
	srv, _ := newServer(f, nil)
	h := srv.Handler()
	for _, a := range routerSeeds(f) {
		f.Add(a)
	}
	f.Add("JWT eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.")
	f.Add("JWT eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.AAAA")
	f.Add("jwt \xff\xfe")
	f.Fuzz(func(t *testing.T, authorization string) {
		req := httptest.NewRequest("GET", "/api/mobile/v4/users/alice/enrollments_status/", nil)
		req.Header["Authorization"] = []string{authorization}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, "Authorization "+authorization, w)
		if w.Code != 200 && w.Code != 401 && w.Code != 403 && w.Code != 431 {
			t.Fatalf("Authorization %q = %d %s", authorization, w.Code, w.Body)
		}
	})
}
