package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, registered on Deps.Registerer.
const (
	MetricRequests = "enrollstatus_http_requests_total"
	MetricDuration = "enrollstatus_http_request_duration_seconds"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the HTTP metrics. Their labels are the route
// template, the method (OTHER for unusual ones) and the status code: never
// a username or a path a client made up.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"route", "method", "code"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "HTTP requests answered, by route template, method and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "Time from the request reaching the handler to the answer being written, by route template, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// routeKey is where a handler that routes by itself names its route.
const routeKey = "enrollstatus.route"

// routeOf is the route label of a request: what its handler named, else the
// route template echo matched, else unmatchedRoute.
func routeOf(c echo.Context) string {
	if r, ok := c.Get(routeKey).(string); ok {
		return r
	}
	if p := c.Path(); p != "" {
		return p
	}
	return unmatchedRoute
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// instrument counts and times every request. It answers errors itself (via
// the error handler) so that the status it records is the one sent.
func (s *Server) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route, method := routeOf(c), methodLabel(c.Request().Method)
		code := strconv.Itoa(c.Response().Status)
		s.metrics.requests.WithLabelValues(route, method, code).Inc()
		s.metrics.duration.WithLabelValues(route, method, code).Observe(time.Since(start).Seconds())
		return nil
	}
}
