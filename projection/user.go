package projection

import (
	"slices"
	"strings"
	"time"
)

// User is everything the projection keeps about one user: one record, read with
// one key lookup.
type User struct {
	ID           int64
	Username     string
	UsernameTime time.Time
	// Courses is sorted by CourseID, byte-wise, without duplicates.
	Courses []UserCourse
}

// UserCourse is one user's relation to one course.
type UserCourse struct {
	CourseID string
	// Enrollment is the winning version of the enrollment; Enrollment.Time is
	// zero when no enrollment event has been seen (only completions).
	Enrollment EnrollmentState
	// LastCompletion is the greatest creation time of a block completion.
	LastCompletion time.Time
	// View is this record's copy of the course's current metadata, so that a
	// query needs no join. The store keeps it equal to the course's CourseMeta.
	View CourseView
}

// EnrollmentState is one version of an enrollment.
type EnrollmentState struct {
	Active  bool
	Mode    string
	Created time.Time
	Time    time.Time
}

// Known reports whether an enrollment event has been applied.
func (s EnrollmentState) Known() bool { return !s.Time.IsZero() }

// wins reports whether s beats o: later event time, then a fixed order of the
// fields, so two versions with equal times always resolve the same way.
func (s EnrollmentState) wins(o EnrollmentState) bool {
	if c := s.Time.Compare(o.Time); c != 0 {
		return c > 0
	}
	// Equal times: an unenrollment beats an enrollment (the safer answer),
	// then the later creation time, then the greater mode.
	if s.Active != o.Active {
		return !s.Active
	}
	if c := s.Created.Compare(o.Created); c != 0 {
		return c > 0
	}
	return s.Mode > o.Mode
}

// MaxCoursesPerUser bounds a record, so that a flood of events for one user
// cannot make every update and query of that user ever slower. A record that
// is full keeps the entries with the smallest course ids (the ones an answer
// considers first, since the LMS's limit takes courses in that order): the
// kept set does not depend on the order events arrive in.
const MaxCoursesPerUser = 10000

// course returns the entry for courseID, inserting an empty one in order,
// and the course id it evicted to make room, if any. It returns nil when the
// record is full of courses that sort before courseID.
func (u *User) course(courseID string) (c *UserCourse, evicted string) {
	i, found := slices.BinarySearchFunc(u.Courses, courseID, func(c UserCourse, id string) int {
		return strings.Compare(c.CourseID, id)
	})
	if found {
		return &u.Courses[i], ""
	}
	if len(u.Courses) >= MaxCoursesPerUser {
		if i == len(u.Courses) {
			return nil, ""
		}
		evicted = u.Courses[len(u.Courses)-1].CourseID
		u.Courses = u.Courses[:len(u.Courses)-1]
	}
	u.Courses = slices.Insert(u.Courses, i, UserCourse{CourseID: courseID})
	return &u.Courses[i], evicted
}

// InsertCourses inserts empty entries for courseIDs, which must be sorted,
// distinct and not in the record yet, all at once, where Apply inserting
// them one by one shifts and grows the entries each time: merged from the
// back, each entry moves once, within the record's slice when its capacity
// allows. It reports whether it did; it does nothing when they would not
// all fit (see MaxCoursesPerUser), where Apply evicts.
func (u *User) InsertCourses(courseIDs []string) bool {
	if len(courseIDs) == 0 {
		return true
	}
	n := len(u.Courses)
	if n+len(courseIDs) > MaxCoursesPerUser {
		return false
	}
	u.Courses = slices.Grow(u.Courses, len(courseIDs))[:n+len(courseIDs)]
	old, add := n-1, len(courseIDs)-1
	for to := len(u.Courses) - 1; add >= 0; to-- {
		if old >= 0 && u.Courses[old].CourseID > courseIDs[add] {
			u.Courses[to] = u.Courses[old]
			old--
		} else {
			u.Courses[to] = UserCourse{CourseID: courseIDs[add]}
			add--
		}
	}
	return true
}

// Course returns the entry for courseID, if any.
func (u *User) Course(courseID string) (UserCourse, bool) {
	i, found := slices.BinarySearchFunc(u.Courses, courseID, func(c UserCourse, id string) int {
		return strings.Compare(c.CourseID, id)
	})
	if !found {
		return UserCourse{}, false
	}
	return u.Courses[i], true
}

// Apply merges a user event into the record and returns the course id whose
// entry it evicted, if the record was full (see MaxCoursesPerUser). Course
// metadata carried by the event (an enrollment's course name) is not merged:
// it belongs to the course, see MetaOf and SetView. Events about other users
// and course events are ignored; the caller routes them.
func (u *User) Apply(e Event) (evicted string) {
	switch e := e.(type) {
	case Enrollment:
		u.rename(e.Username, e.Time)
		c, evicted := u.course(e.CourseID)
		if c == nil {
			return ""
		}
		v := EnrollmentState{Active: e.Active, Mode: e.Mode, Created: e.Created.UTC(), Time: e.Time.UTC()}
		if !c.Enrollment.Known() || v.wins(c.Enrollment) {
			c.Enrollment = v
		}
		return evicted
	case Completion:
		c, evicted := u.course(e.CourseID)
		if c == nil {
			return ""
		}
		if e.Created.After(c.LastCompletion) {
			c.LastCompletion = e.Created.UTC()
		}
		return evicted
	case UserInfo:
		u.rename(e.Username, e.Time)
	}
	return ""
}

func (u *User) rename(name string, t time.Time) {
	if name == "" {
		return
	}
	if u.Username == "" || laterString(t, name, u.UsernameTime, u.Username) {
		u.Username, u.UsernameTime = name, t.UTC()
	}
}

// HasCourse reports whether the record has an entry for courseID.
func (u *User) HasCourse(courseID string) bool {
	_, found := u.Course(courseID)
	return found
}

// SetView sets this user's copy of a course's metadata, if the user has an
// entry for the course. It reports whether the record changed.
func (u *User) SetView(courseID string, v CourseView) bool {
	i, found := slices.BinarySearchFunc(u.Courses, courseID, func(c UserCourse, id string) int {
		return strings.Compare(c.CourseID, id)
	})
	if !found || u.Courses[i].View == v {
		return false
	}
	u.Courses[i].View = v
	return true
}
