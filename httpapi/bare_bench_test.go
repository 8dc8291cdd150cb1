package httpapi_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
)

// BenchmarkServeConnBareJWT is BenchmarkServeConn's baseline: the query
// benchmark's bare echo server with the service's token verifier, answering
// the same body, over the same in-memory connection.
func BenchmarkServeConnBareJWT(b *testing.B) {
	v, err := jwtauth.New(testConfig().JWT, jwtauth.Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	body := []byte(demoBody)
	e := echo.New()
	e.GET("/api/mobile/:version/users/:username/enrollments_status/", func(c echo.Context) error {
		tok, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "JWT ")
		if !ok {
			return c.NoContent(http.StatusUnauthorized)
		}
		if _, err := v.Verify(c.Request().Context(), tok); err != nil {
			return c.NoContent(http.StatusUnauthorized)
		}
		return c.JSONBlob(http.StatusOK, body)
	})
	srv := httpapi.NewHTTPServer(httpapi.DefaultConfig(), e, nil)
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
