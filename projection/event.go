package projection

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one fact the projection learns from a stream. The concrete types are
// Enrollment, Completion, CourseInfo, UserInfo and Retirement.
type Event interface {
	// Validate reports why the event cannot be applied, or nil.
	Validate() error
	// EventTime is when the fact became true at its source.
	EventTime() time.Time
}

// Enrollment is a version of one user's enrollment in one course: created,
// changed (mode, activation) or ended (unenrollment).
type Enrollment struct {
	UserID   int64
	Username string // may be empty when the source does not carry it
	CourseID string
	// CourseName is the course's display name as the event saw it; nil when the
	// event does not carry one.
	CourseName *string
	Mode       string
	Active     bool
	Created    time.Time // the enrollment's creation time, not the event's
	Time       time.Time // event time
}

// Completion is a block completion; only its creation time matters.
type Completion struct {
	UserID   int64
	CourseID string
	BlockID  string
	Created  time.Time // BlockCompletion.created
	Time     time.Time
}

// CourseInfo is what a source says about a course. Nil fields are unknown to
// that source and leave the projection unchanged.
type CourseInfo struct {
	CourseID        string
	Name            *string
	MobileAvailable *bool
	Time            time.Time
}

// UserInfo says that a user id has a username as of Time.
type UserInfo struct {
	UserID   int64
	Username string
	Time     time.Time
}

// Retirement erases a user and drops every later event for the user id.
type Retirement struct {
	UserID   int64
	Username string // informational; the id is what is erased
	Time     time.Time
}

func (e Enrollment) EventTime() time.Time { return e.Time }
func (e Completion) EventTime() time.Time { return e.Time }
func (e CourseInfo) EventTime() time.Time { return e.Time }
func (e UserInfo) EventTime() time.Time   { return e.Time }
func (e Retirement) EventTime() time.Time { return e.Time }

// ErrInvalidEvent is wrapped by every Validate error.
var ErrInvalidEvent = errors.New("invalid event")

// Bounds on what the projection accepts. They keep one hostile event from
// blowing up a record; real Open edX values are far smaller.
const (
	MaxKeyLen  = 1024 // course ids, block ids
	MaxNameLen = 4096 // display names, usernames
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

func validUser(id int64) error {
	if id <= 0 {
		return invalid("user id %d is not positive", id)
	}
	return nil
}

func validCourse(id string) error {
	switch {
	case id == "":
		return invalid("empty course id")
	case len(id) > MaxKeyLen:
		return invalid("course id of %d bytes exceeds %d", len(id), MaxKeyLen)
	case strings.IndexByte(id, 0) >= 0:
		return invalid("course id contains a NUL byte")
	case !utf8.ValidString(id):
		return invalid("course id is not valid UTF-8")
	}
	return nil
}

func validTime(what string, t time.Time) error {
	if t.IsZero() {
		return invalid("%s is missing", what)
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return invalid("%s year %d out of range", what, y)
	}
	return nil
}

func validName(what, s string) error {
	if len(s) > MaxNameLen {
		return invalid("%s of %d bytes exceeds %d", what, len(s), MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	return nil
}

func (e Enrollment) Validate() error {
	if e.CourseName != nil {
		if err := validName("course name", *e.CourseName); err != nil {
			return err
		}
	}
	return errors.Join(validUser(e.UserID), validCourse(e.CourseID),
		validName("username", e.Username), validName("mode", e.Mode),
		validTime("enrollment creation time", e.Created), validTime("event time", e.Time))
}

func (e Completion) Validate() error {
	return errors.Join(validUser(e.UserID), validCourse(e.CourseID),
		validName("block id", e.BlockID), validTime("completion creation time", e.Created))
}

func (e CourseInfo) Validate() error {
	var nameErr error
	if e.Name != nil {
		nameErr = validName("course name", *e.Name)
	}
	return errors.Join(validCourse(e.CourseID), nameErr, validTime("event time", e.Time))
}

func (e UserInfo) Validate() error {
	var empty error
	if e.Username == "" {
		empty = invalid("empty username")
	}
	return errors.Join(validUser(e.UserID), empty, validName("username", e.Username),
		validTime("event time", e.Time))
}

func (e Retirement) Validate() error { return validUser(e.UserID) }

// UserOf returns the user id an event is about, and false for course events.
func UserOf(e Event) (int64, bool) {
	switch e := e.(type) {
	case Enrollment:
		return e.UserID, true
	case Completion:
		return e.UserID, true
	case UserInfo:
		return e.UserID, true
	case Retirement:
		return e.UserID, true
	}
	return 0, false
}
