package projection

import (
	"strings"
	"time"
)

// Availability is a course's mobile availability as far as the projection knows.
type Availability uint8

const (
	AvailabilityUnknown Availability = iota // never told
	Available
	Unavailable
)

// CourseMeta is what the projection knows about a course: its display name and
// mobile availability, each with the event time that set it.
type CourseMeta struct {
	Name       string
	HasName    bool
	NameTime   time.Time
	Mobile     Availability
	MobileTime time.Time
}

// CourseView is the part of CourseMeta a status answer shows.
type CourseView struct {
	Name    string
	HasName bool
	Mobile  Availability
}

// View returns the answer-visible part of m.
func (m CourseMeta) View() CourseView {
	return CourseView{Name: m.Name, HasName: m.HasName, Mobile: m.Mobile}
}

// Merge joins two states of knowledge about a course: per field, the later
// event wins, and equal times are broken by value so the result never depends
// on which side is the receiver.
func (m CourseMeta) Merge(o CourseMeta) CourseMeta {
	if o.HasName && (!m.HasName || laterString(o.NameTime, o.Name, m.NameTime, m.Name)) {
		m.Name, m.HasName, m.NameTime = o.Name, true, o.NameTime
	}
	if o.Mobile != AvailabilityUnknown && (m.Mobile == AvailabilityUnknown ||
		o.MobileTime.After(m.MobileTime) ||
		(o.MobileTime.Equal(m.MobileTime) && o.Mobile > m.Mobile)) {
		m.Mobile, m.MobileTime = o.Mobile, o.MobileTime
	}
	return m
}

// laterString reports whether (t1, s1) wins over (t2, s2): later time, then the
// byte-wise greater value.
func laterString(t1 time.Time, s1 string, t2 time.Time, s2 string) bool {
	if !t1.Equal(t2) {
		return t1.After(t2)
	}
	return strings.Compare(s1, s2) > 0
}

// MetaOf returns the knowledge about a course that an event carries.
func MetaOf(e Event) (courseID string, meta CourseMeta, ok bool) {
	switch e := e.(type) {
	case CourseInfo:
		if e.Name != nil {
			meta.Name, meta.HasName, meta.NameTime = *e.Name, true, e.Time.UTC()
		}
		if e.MobileAvailable != nil {
			meta.Mobile, meta.MobileTime = Unavailable, e.Time.UTC()
			if *e.MobileAvailable {
				meta.Mobile = Available
			}
		}
		return e.CourseID, meta, true
	case Enrollment:
		if e.CourseName == nil {
			return "", meta, false
		}
		meta.Name, meta.HasName, meta.NameTime = *e.CourseName, true, e.Time.UTC()
		return e.CourseID, meta, true
	}
	return "", meta, false
}
