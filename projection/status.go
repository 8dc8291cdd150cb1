package projection

import (
	"fmt"
	"time"
)

// MobileFilter says how the LMS's mobile_available filter is applied.
type MobileFilter string

const (
	// MobileKnown drops courses known to be unavailable on mobile and keeps
	// courses the projection was never told about (the default).
	MobileKnown MobileFilter = "known"
	// MobileStrict also drops courses whose availability is unknown: strict
	// parity with an LMS whose every course overview is streamed.
	MobileStrict MobileFilter = "strict"
	// MobileOff keeps every course, like the LMS's
	// IgnoreMobileAvailableFlagConfig switch.
	MobileOff MobileFilter = "off"
)

// ParseMobileFilter parses a MobileFilter, naming the valid values on error.
func ParseMobileFilter(s string) (MobileFilter, error) {
	switch f := MobileFilter(s); f {
	case MobileKnown, MobileStrict, MobileOff:
		return f, nil
	}
	return "", fmt.Errorf("mobile filter %q: want one of known, strict, off", s)
}

// Policy holds the parameters of the status computation.
type Policy struct {
	Window time.Duration // recently active window, 30 days in the LMS
	Limit  int           // enrollments considered, USER_ENROLLMENTS_LIMIT = 500
	Mobile MobileFilter
}

// DefaultPolicy is the LMS's behaviour.
func DefaultPolicy() Policy {
	return Policy{Window: 30 * 24 * time.Hour, Limit: 500, Mobile: MobileKnown}
}

// StatusQuery is one status read: whose, at which now, and whether the
// caller is global staff.
type StatusQuery struct {
	Username string // as in the URL, decoded
	Now      time.Time
	// Staff is the caller's is_staff (the token's administrator claim).
	Staff bool
}

// For is the policy an answer to q follows: the LMS's mobile filter
// (is_mobile_available_for_user) lets global staff see every course.
func (p Policy) For(q StatusQuery) Policy {
	if q.Staff {
		p.Mobile = MobileOff
	}
	return p
}

// Status is one entry of a user's enrollments status.
type Status struct {
	CourseID       string
	CourseName     string
	HasCourseName  bool // false: the name is unknown and answers null
	RecentlyActive bool
}

// Status computes the user's enrollments status at now, as the LMS's
// UserEnrollmentsStatus view does:
//
//   - active enrollments only, ordered by course id byte-wise;
//   - at most p.Limit of them, taken before the mobile filter;
//   - recently active when a block completion was created at or after
//     now - window, or the enrollment was created strictly after it.
func (u *User) Status(now time.Time, p Policy) []Status {
	since := now.Add(-p.Window)
	out := make([]Status, 0, min(len(u.Courses), max(p.Limit, 0)))
	considered := 0
	for i := range u.Courses {
		c := &u.Courses[i]
		if !c.Enrollment.Known() || !c.Enrollment.Active {
			continue
		}
		if considered >= p.Limit {
			break
		}
		considered++
		if !p.mobileAvailable(c.View.Mobile) {
			continue
		}
		out = append(out, Status{
			CourseID:      c.CourseID,
			CourseName:    c.View.Name,
			HasCourseName: c.View.HasName,
			RecentlyActive: (!c.LastCompletion.IsZero() && !c.LastCompletion.Before(since)) ||
				c.Enrollment.Created.After(since),
		})
	}
	return out
}

func (p Policy) mobileAvailable(a Availability) bool {
	switch p.Mobile {
	case MobileOff:
		return true
	case MobileStrict:
		return a == Available
	default:
		return a != Unavailable
	}
}
