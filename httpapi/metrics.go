package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
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
	// children caches the counter and histogram of each label set seen, so
	// that a request does not hash and look up its labels twice in the
	// vectors. It holds no more label sets than the vectors themselves.
	children sync.Map // labelSet -> *metricChildren
}

type labelSet struct {
	route, method string
	code          int
}

type metricChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
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

// routeOf is the route label of a request: the route template echo
// matched, or the one a handler that routes by itself named with SetPath,
// else unmatchedRoute.
func routeOf(c echo.Context) string {
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

// observe counts and times a request answered (see Server.middleware, which
// answers errors itself so that the status recorded is the one sent).
func (m *metrics) observe(c echo.Context, start time.Time) {
	k := labelSet{route: routeOf(c), method: methodLabel(c.Request().Method), code: c.Response().Status}
	var ch *metricChildren
	if v, ok := m.children.Load(k); ok {
		ch = v.(*metricChildren)
	} else {
		code := strconv.Itoa(k.code)
		ch = &metricChildren{
			requests: m.requests.WithLabelValues(k.route, k.method, code),
			duration: m.duration.WithLabelValues(k.route, k.method, code),
		}
		m.children.Store(k, ch)
	}
	ch.requests.Inc()
	ch.duration.Observe(time.Since(start).Seconds())
}
