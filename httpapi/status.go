package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Freshness headers, on every status answer (200, GET and HEAD). They let a
// client tell a stale answer from an empty one.
const (
	// HeaderLastEventTime is the greatest event time the projection has
	// applied (an event time ahead of the clock counts as when it was
	// applied), RFC 3339 with nanoseconds, UTC; absent before any event.
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

// status answers the user's enrollments status, read at the request's now;
// staff, the caller's is_staff, lifts the mobile filter. The answer is
// encoded while the store lends it, and written after.
func (s *Server) status(c echo.Context, username string, staff bool) error {
	a := getAnswer()
	defer putAnswer(a)
	q := projection.StatusQuery{Username: username, Now: s.now(), Staff: staff}
	if err := s.statuses.StatusFunc(c.Request().Context(), q, a.encode); err != nil {
		return fmt.Errorf("read enrollments status: %w", err)
	}
	lag, connected := s.health.Lag()
	s.fresh.set(c.Response().Header(), a.fresh, lag, connected, s.cfg.StaleLag)
	return writeJSON(c, http.StatusOK, a.body)
}

// answer is a status answer being built, pooled: its body, and the
// freshness of the read.
type answer struct {
	body  []byte
	fresh projection.Freshness
	// encode is a.take, bound once so that lending it to the store
	// allocates nothing per request.
	encode func([]projection.Status, projection.Freshness) error
}

// take encodes the statuses the store lends.
func (a *answer) take(st []projection.Status, fresh projection.Freshness) error {
	a.body, a.fresh = appendStatuses(a.body[:0], st), fresh
	return nil
}

var answers = sync.Pool{New: func() any {
	a := &answer{body: make([]byte, 0, 1024)}
	a.encode = a.take
	return a
}}

func getAnswer() *answer { return answers.Get().(*answer) }

// putAnswer returns a to the pool, unless a user with very many courses
// grew its body past maxPooledBody.
func putAnswer(a *answer) {
	if cap(a.body) > maxPooledBody {
		return
	}
	a.body, a.fresh = a.body[:0], projection.Freshness{}
	answers.Put(a)
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
