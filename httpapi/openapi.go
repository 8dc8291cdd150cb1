package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI is the machine-readable contract of every endpoint, checked against
// the running service in CI (scripts/openapi-check.sh).
//
//go:embed openapi.yaml
var openAPI []byte

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPI)
}
