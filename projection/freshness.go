package projection

import "time"

// Freshness says how up to date a read of the projection is, so that a client
// can tell a stale answer from an empty one.
type Freshness struct {
	// LastEventTime is the greatest event time applied so far (zero: none),
	// an event time past its commit counted as the commit's time.
	LastEventTime time.Time
	// CommittedAt is the wall-clock time of the last committed batch.
	CommittedAt time.Time
	// Applied is the number of messages applied since the projection began.
	Applied uint64
}
