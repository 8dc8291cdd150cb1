package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Freshness headers, on every status answer (200, GET and HEAD). They let a
// client tell a stale answer from an empty one.
const (
	// HeaderLastEventTime is the greatest event time the projection has
	// applied, RFC 3339 with nanoseconds, UTC; absent before any event.
	HeaderLastEventTime = "X-Enrollstatus-Last-Event-Time"
	// HeaderCommittedAt is when the projection last committed a batch, in
	// the same format; absent before any commit.
	HeaderCommittedAt = "X-Enrollstatus-Committed-At"
	// HeaderLag is the consumer's lag in messages, summed over partitions.
	HeaderLag = "X-Enrollstatus-Lag"
	// HeaderStale is "true" when the consumer is disconnected from the
	// broker or its lag exceeds Config.StaleLag, else "false".
	HeaderStale = "X-Enrollstatus-Stale"
)

var (
	trueValue  = []string{"true"}
	falseValue = []string{"false"}
)

// status answers the user's enrollments status, read at the request's now.
func (s *Server) status(c echo.Context, username string) error {
	r := c.Request()
	statuses, fresh, err := s.statuses.Status(r.Context(), username, s.now())
	if err != nil {
		return fmt.Errorf("read enrollments status: %w", err)
	}
	lag, connected := s.health.Lag()
	setFreshness(c.Response().Header(), fresh, lag, connected, s.cfg.StaleLag)

	b := getBody()
	defer putBody(b)
	*b = appendStatuses(*b, statuses)
	return writeJSON(c, http.StatusOK, *b)
}

func setFreshness(h http.Header, f projection.Freshness, lag int64, connected bool, staleLag int64) {
	if !f.LastEventTime.IsZero() {
		h[HeaderLastEventTime] = []string{f.LastEventTime.UTC().Format(time.RFC3339Nano)}
	}
	if !f.CommittedAt.IsZero() {
		h[HeaderCommittedAt] = []string{f.CommittedAt.UTC().Format(time.RFC3339Nano)}
	}
	h[HeaderLag] = []string{strconv.FormatInt(lag, 10)}
	if !connected || lag > staleLag {
		h[HeaderStale] = trueValue
	} else {
		h[HeaderStale] = falseValue
	}
}
