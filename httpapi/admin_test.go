package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi"
)

const adminToken = "admin-0123456789abcdef0123456789abcdef"

func mountAdmin(srv *httpapi.Server) {
	srv.Admin().POST("/rebuild", func(c echo.Context) error {
		return c.JSONBlob(http.StatusAccepted, []byte(`{"status":"rebuilding"}`))
	})
	srv.Admin().GET("/bad", func(echo.Context) error {
		return httpapi.Errorf(httpapi.EINVALID, "Snapshot name %q is invalid.", "x/y")
	})
	srv.Admin().GET("/broken", func(echo.Context) error { return errors.New("disk full") })
}

func TestAdmin(t *testing.T) {
	e := startServer(t, func(c *httpapi.Config) { c.AdminToken = adminToken })
	mountAdmin(e.srv)
	tests := []struct {
		name, method, path string
		headers            []string
		code               int
		body               string
	}{
		{"no credentials", "POST", "/admin/rebuild", nil, 401, `{"detail":"Admin credentials were not provided."}`},
		{"wrong token", "POST", "/admin/rebuild", []string{"Authorization", "Bearer " + adminToken[:len(adminToken)-1] + "x"}, 401,
			`{"detail":"Invalid admin credentials."}`},
		{"prefix of the token", "POST", "/admin/rebuild", []string{"Authorization", "Bearer " + adminToken[:10]}, 401,
			`{"detail":"Invalid admin credentials."}`},
		{"wrong scheme", "POST", "/admin/rebuild", []string{"Authorization", "JWT " + adminToken}, 401,
			`{"detail":"Invalid admin credentials."}`},
		{"a user JWT", "POST", "/admin/rebuild", []string{"Authorization", "Bearer " + token(t, "alice")}, 401,
			`{"detail":"Invalid admin credentials."}`},
		{"token in the query", "POST", "/admin/rebuild?token=" + adminToken, nil, 401,
			`{"detail":"Admin credentials were not provided."}`},
		{"admin", "POST", "/admin/rebuild", []string{"Authorization", "Bearer " + adminToken}, 202, `{"status":"rebuilding"}`},
		{"admin, lower-case scheme", "POST", "/admin/rebuild", []string{"Authorization", "bearer " + adminToken}, 202, `{"status":"rebuilding"}`},
		{"client error", "GET", "/admin/bad", []string{"Authorization", "Bearer " + adminToken}, 400,
			`{"detail":"Snapshot name \"x/y\" is invalid."}`},
		{"server fault", "GET", "/admin/broken", []string{"Authorization", "Bearer " + adminToken}, 500,
			`{"detail":"A server error occurred."}`},
		{"unknown admin route", "GET", "/admin/nope", []string{"Authorization", "Bearer " + adminToken}, 404, notFound},
		{"unknown admin route, no credentials", "GET", "/admin/nope", nil, 401,
			`{"detail":"Admin credentials were not provided."}`},
		// echo's group not-found route wins over 405 for admin routes.
		{"wrong method", "GET", "/admin/rebuild", []string{"Authorization", "Bearer " + adminToken}, 404, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.headers...)
			if r.code != tt.code || r.body != tt.body {
				t.Fatalf("= %d %s; want %d %s", r.code, r.body, tt.code, tt.body)
			}
			if tt.code == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="admin"` {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	if strings.Contains(e.logs.String(), adminToken) {
		t.Error("the admin token reached the logs")
	}
}

// TestAdminOff: without a token the admin routes do not exist.
func TestAdminOff(t *testing.T) {
	e := startServer(t, nil)
	mountAdmin(e.srv)
	for _, h := range [][]string{nil, {"Authorization", "Bearer "}, {"Authorization", "Bearer " + adminToken}} {
		if r := e.do(t, "POST", "/admin/rebuild", h...); r.code != 404 || r.body != notFound {
			t.Fatalf("%v: %d %s", h, r.code, r.body)
		}
	}
}
