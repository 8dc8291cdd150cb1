package httpapi_test

import (
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
	serveConn(b, httpapi.NewHTTPServer(httpapi.DefaultConfig(), e, nil))
}
