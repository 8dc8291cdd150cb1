package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

var healthzBody = []byte(`{"status":"ok"}`)

// healthz says the process is alive and serving HTTP, nothing more.
func (s *Server) healthz(c echo.Context) error {
	return writeJSON(c, http.StatusOK, healthzBody)
}

// readyz says whether the service may take traffic: the store is open and
// the start-up catch-up is done. A broker outage later does not make it
// unready (a stale answer, flagged, beats none); the lag and connectivity
// are shown for operators.
func (s *Server) readyz(c echo.Context) error {
	if err := s.health.Ready(); err != nil {
		return &Error{Code: EUNAVAILABLE, Detail: "Not ready: " + err.Error()}
	}
	lag, connected := s.health.Lag()
	b := getBody()
	defer putBody(b)
	*b = append(*b, `{"status":"ready","lag":`...)
	*b = strconv.AppendInt(*b, lag, 10)
	*b = append(*b, `,"connected":`...)
	*b = strconv.AppendBool(*b, connected)
	*b = append(*b, '}')
	return writeJSON(c, http.StatusOK, *b)
}
