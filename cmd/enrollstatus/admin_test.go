package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

const testAdminToken = "admin-token-admin-token-admin-token"

// TestAdminEndpoints: the operator endpoints behind the admin token: inspect
// with its parameters checked, 405 with Allow for methods a path does not
// take (including methods the router does not know), 401 without the token.
func TestAdminEndpoints(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dev-enrollstatus-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = t.TempDir(), "127.0.0.1:0"
	cfg.Brokers, cfg.Topics = listFlag{cluster.ListenAddrs()[0]}, listFlag{"dev-enrollstatus-events"}
	cfg.JWTSecrets, cfg.AdminToken = listFlag{testSecret}, testAdminToken
	ctx, cancel := context.WithCancel(context.Background())
	started, done := make(chan *service, 1), make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), started) }()
	defer func() { cancel(); <-done }()
	svc := <-started
	// The empty projection's first catch-up is a bulk load, during which a
	// compaction is refused (409): wait until it is done.
	for deadline := time.Now().Add(10 * time.Second); svc.pipeline.Ready() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", svc.pipeline.Ready())
		}
	}

	call := func(method, path, token string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, "http://"+svc.httpAddr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	tests := []struct {
		method, path, token string
		code                int
		allow               string
	}{
		{"GET", "/admin/inspect", testAdminToken, 200, ""},
		{"GET", "/admin/inspect?digest=true", testAdminToken, 200, ""},
		{"GET", "/admin/inspect", "", 401, ""},
		{"GET", "/admin/inspect", "wrong-token-wrong-token-wrong-token", 401, ""},
		{"GET", "/admin/inspect?digest=", testAdminToken, 400, ""},
		{"GET", "/admin/inspect?digest=1", testAdminToken, 400, ""},
		{"GET", "/admin/inspect?user_id=x", testAdminToken, 400, ""},
		{"GET", "/admin/inspect?user_id=42", testAdminToken, 404, ""},
		{"DELETE", "/admin/inspect", testAdminToken, 405, "GET, HEAD"},
		{"QUERY", "/admin/inspect", testAdminToken, 405, "GET, HEAD"},
		{"GET", "/admin/inspectfoo", testAdminToken, 404, ""},
		{"PUT", "/admin/rebuild", testAdminToken, 405, "POST, GET, HEAD"},
		{"GET", "/admin/compact", testAdminToken, 405, "POST"},
		{"POST", "/admin/rebuild?from=yesterday", testAdminToken, 400, ""},
	}
	for _, tt := range tests {
		code, h, body := call(tt.method, tt.path, tt.token)
		if code != tt.code || h.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q (%s)", tt.method, tt.path, code, h.Get("Allow"), tt.code, tt.allow, body)
		}
		if code >= 400 && !strings.HasPrefix(body, `{"detail":`) {
			t.Errorf("%s %s: body %q is not a JSON error", tt.method, tt.path, body)
		}
	}

	// A compaction answers its sizes, and the digest survives it.
	_, _, before := call("GET", "/admin/inspect?digest=true", testAdminToken)
	if code, _, body := call("POST", "/admin/compact", testAdminToken); code != 200 || !strings.Contains(body, "bytes_after") {
		t.Fatalf("compact: %d %s", code, body)
	}
	_, _, after := call("GET", "/admin/inspect?digest=true", testAdminToken)
	var a, b struct{ Digest string }
	json.Unmarshal([]byte(before), &a)
	json.Unmarshal([]byte(after), &b)
	if a.Digest == "" || a.Digest != b.Digest {
		t.Fatalf("digest %q before compaction, %q after", a.Digest, b.Digest)
	}

	// A snapshot is a projection file with its length announced.
	code, h, body := call("GET", "/admin/snapshot", testAdminToken)
	if code != 200 || h.Get("Content-Length") == "" || len(body) == 0 {
		t.Fatalf("snapshot: %d length %q, %d bytes", code, h.Get("Content-Length"), len(body))
	}
}
