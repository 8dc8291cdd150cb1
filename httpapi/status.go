package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
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
	s.fresh.set(c.Response().Header(), fresh, lag, connected, s.cfg.StaleLag)

	b := getBody()
	defer putBody(b)
	*b = appendStatuses(*b, statuses)
	return writeJSON(c, http.StatusOK, *b)
}

// freshHeaders formats the freshness headers. The projection's times and
// the lag change once per batch applied, not per request: the values of
// the last answer are kept and reused while they stay the same.
type freshHeaders struct {
	last atomic.Pointer[freshValues]
}

// freshValues are the header values of one freshness; the slices are
// shared by every answer that carries them and never modified.
type freshValues struct {
	lastEventTime, committedAt time.Time
	lag                        int64
	lastEventTimeV, committedV []string
	lagV                       []string
}

func (f *freshHeaders) set(h http.Header, fresh projection.Freshness, lag int64, connected bool, staleLag int64) {
	v := f.last.Load()
	if v == nil || !v.lastEventTime.Equal(fresh.LastEventTime) || !v.committedAt.Equal(fresh.CommittedAt) || v.lag != lag {
		v = &freshValues{lastEventTime: fresh.LastEventTime, committedAt: fresh.CommittedAt, lag: lag,
			lagV: []string{strconv.FormatInt(lag, 10)}}
		if !fresh.LastEventTime.IsZero() {
			v.lastEventTimeV = []string{fresh.LastEventTime.UTC().Format(time.RFC3339Nano)}
		}
		if !fresh.CommittedAt.IsZero() {
			v.committedV = []string{fresh.CommittedAt.UTC().Format(time.RFC3339Nano)}
		}
		f.last.Store(v)
	}
	if v.lastEventTimeV != nil {
		h[HeaderLastEventTime] = v.lastEventTimeV
	}
	if v.committedV != nil {
		h[HeaderCommittedAt] = v.committedV
	}
	h[HeaderLag] = v.lagV
	if !connected || lag > staleLag {
		h[HeaderStale] = trueValue
	} else {
		h[HeaderStale] = falseValue
	}
}
