package httpapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/httpapi"
)

func TestHealth(t *testing.T) {
	e := startServer(t, nil)
	if r := e.do(t, "GET", "/healthz"); r.code != 200 || r.body != `{"status":"ok"}` {
		t.Fatalf("/healthz = %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", "/readyz"); r.code != 200 || r.body != `{"status":"ready","lag":3,"connected":true}` {
		t.Fatalf("/readyz = %d %s", r.code, r.body)
	}
	e.health.set(func(h *fakeHealth) { h.ready = errors.New("catching up: 1200 messages behind") })
	if r := e.do(t, "GET", "/readyz"); r.code != 503 || r.body != `{"detail":"Not ready: catching up: 1200 messages behind"}` {
		t.Fatalf("/readyz unready = %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", "/healthz"); r.code != 200 {
		t.Fatalf("/healthz while unready = %d", r.code)
	}
	if r := e.do(t, "HEAD", "/healthz"); r.code != 200 || r.body != "" {
		t.Fatalf("HEAD /healthz = %d %q", r.code, r.body)
	}
	if r := e.do(t, "POST", "/healthz"); r.code != 405 || r.body != `{"detail":"Method \"POST\" not allowed."}` {
		t.Fatalf("POST /healthz = %d %s", r.code, r.body)
	}
	if r := e.do(t, "OPTIONS", "*"); r.code != 404 || r.body != notFound {
		t.Fatalf("OPTIONS * = %d %s", r.code, r.body)
	}
}

func TestMetrics(t *testing.T) {
	e := startServer(t, nil)
	e.do(t, "GET", alicePath, auth(t, "alice")...)
	e.do(t, "GET", alicePath, auth(t, "alice")...)
	e.do(t, "GET", "/api/mobile/v4/users/bob/enrollments_status/", auth(t, "alice")...)
	e.do(t, "GET", "/api/mobile/v4/users/alice/enrollments_status")
	e.do(t, "GET", "/no/such/secret-path-alice")
	e.do(t, "GET", "/api/mobile/v4/users/bad%2Fname/enrollments_status/")
	e.do(t, "PURGE", alicePath, auth(t, "alice")...)
	e.do(t, "BREW", "/coffee")

	r := e.do(t, "GET", "/metrics")
	if r.code != 200 {
		t.Fatalf("/metrics = %d", r.code)
	}
	for _, want := range []string{
		`enrollstatus_http_requests_total{code="200",method="GET",route="/api/mobile/{version}/users/{username}/enrollments_status/"} 2`,
		`enrollstatus_http_requests_total{code="403",method="GET",route="/api/mobile/{version}/users/{username}/enrollments_status/"} 1`,
		`enrollstatus_http_requests_total{code="301",method="GET",route="/api/mobile/{version}/users/{username}/enrollments_status"} 1`,
		`enrollstatus_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`enrollstatus_http_requests_total{code="405",method="OTHER",route="/api/mobile/{version}/users/{username}/enrollments_status/"} 1`,
		`enrollstatus_http_requests_total{code="404",method="OTHER",route="unmatched"} 1`,
		`enrollstatus_http_request_duration_seconds_count{code="200",method="GET",route="/api/mobile/{version}/users/{username}/enrollments_status/"} 2`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"alice", "bob", "secret-path", "PURGE", "BREW", "bad"} {
		if strings.Contains(r.body, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	if !names[httpapi.MetricRequests] || !names[httpapi.MetricDuration] {
		t.Fatalf("registered metrics: %v", names)
	}
}

// TestOptionalDeps builds a server with only the required dependencies.
func TestOptionalDeps(t *testing.T) {
	srv, err := httpapi.New(testConfig(), httpapi.Deps{Statuses: &fakeStore{}, Health: &fakeHealth{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	for path, code := range map[string]int{"/metrics": 404, "/healthz": 200} {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != code {
			t.Errorf("GET %s = %d; want %d", path, w.Code, code)
		}
	}
	if _, err := httpapi.New(testConfig(), httpapi.Deps{Health: &fakeHealth{}}); err == nil {
		t.Error("New accepted Deps without Statuses")
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := startServer(t, nil)
	r := e.do(t, "GET", "/openapi.yaml")
	if r.code != 200 || !strings.Contains(r.body, "openapi:") || !strings.Contains(r.body, "enrollments_status") {
		t.Fatalf("GET /openapi.yaml: %d %.200q", r.code, r.body)
	}
}
