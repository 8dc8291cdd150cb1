// Package reference computes enrollments statuses from a whole event history
// by the most straightforward code there is: no incremental state, no store.
// Tests compare the real pipeline against it, so it must stay obviously
// correct rather than fast, and must not share code with the projection
// beyond its event types and LowerUsername.
package reference

import (
	"sort"
	"strings"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Entry is one line of an answer.
type Entry struct {
	CourseID       string
	CourseName     *string
	RecentlyActive bool
}

// Model is an event history.
type Model struct {
	Events []projection.Event
}

// Add appends events to the history.
func (m *Model) Add(events ...projection.Event) { m.Events = append(m.Events, events...) }

// Usernames returns every user id's current username (users without a known
// username and retired users are left out).
func (m *Model) Usernames() map[int64]string {
	retired := m.retired()
	type claim struct {
		name string
		t    time.Time
	}
	best := map[int64]claim{}
	consider := func(id int64, name string, t time.Time) {
		if name == "" || retired[id] {
			return
		}
		c, ok := best[id]
		if !ok || t.After(c.t) || (t.Equal(c.t) && name > c.name) {
			best[id] = claim{name, t}
		}
	}
	for _, e := range m.Events {
		switch e := e.(type) {
		case projection.Enrollment:
			consider(e.UserID, e.Username, e.Time)
		case projection.UserInfo:
			consider(e.UserID, e.Username, e.Time)
		}
	}
	out := map[int64]string{}
	for id, c := range best {
		out[id] = c.name
	}
	return out
}

func (m *Model) retired() map[int64]bool {
	r := map[int64]bool{}
	for _, e := range m.Events {
		if e, ok := e.(projection.Retirement); ok {
			r[e.UserID] = true
		}
	}
	return r
}

// Status answers for the user with that id, at now, under p.
func (m *Model) Status(userID int64, now time.Time, p projection.Policy) []Entry {
	if m.retired()[userID] {
		return []Entry{}
	}
	// The winning enrollment version per course.
	type version struct {
		active  bool
		mode    string
		created time.Time
		t       time.Time
	}
	beats := func(a, b version) bool {
		if !a.t.Equal(b.t) {
			return a.t.After(b.t)
		}
		if a.active != b.active {
			return !a.active
		}
		if !a.created.Equal(b.created) {
			return a.created.After(b.created)
		}
		return a.mode > b.mode
	}
	enrollment := map[string]version{}
	lastCompletion := map[string]time.Time{}
	for _, e := range m.Events {
		switch e := e.(type) {
		case projection.Enrollment:
			if e.UserID != userID {
				continue
			}
			v := version{e.Active, e.Mode, e.Created, e.Time}
			if cur, ok := enrollment[e.CourseID]; !ok || beats(v, cur) {
				enrollment[e.CourseID] = v
			}
		case projection.Completion:
			if e.UserID == userID && e.Created.After(lastCompletion[e.CourseID]) {
				lastCompletion[e.CourseID] = e.Created
			}
		}
	}
	var active []string
	for c, v := range enrollment {
		if v.active {
			active = append(active, c)
		}
	}
	sort.Strings(active) // Go compares strings byte-wise
	if len(active) > p.Limit {
		active = active[:max(p.Limit, 0)]
	}
	since := now.Add(-p.Window)
	out := []Entry{}
	for _, c := range active {
		name, mobile := m.course(c)
		switch {
		case p.Mobile == projection.MobileStrict && mobile != "yes":
			continue
		case p.Mobile == projection.MobileKnown && mobile == "no":
			continue
		}
		lc, hasCompletion := lastCompletion[c]
		out = append(out, Entry{
			CourseID:       c,
			CourseName:     name,
			RecentlyActive: (hasCompletion && !lc.Before(since)) || enrollment[c].created.After(since),
		})
	}
	return out
}

// course returns a course's current name (nil: unknown) and availability
// ("yes", "no" or "" for unknown): the value of the latest event, ties going
// to the greater name and to "not available".
func (m *Model) course(id string) (*string, string) {
	var name *string
	var nameT time.Time
	mobile, mobileT := "", time.Time{}
	offerName := func(n string, t time.Time) {
		if name == nil || t.After(nameT) || (t.Equal(nameT) && strings.Compare(n, *name) > 0) {
			name, nameT = &n, t
		}
	}
	for _, e := range m.Events {
		switch e := e.(type) {
		case projection.Enrollment:
			if e.CourseID == id && e.CourseName != nil {
				offerName(*e.CourseName, e.Time)
			}
		case projection.CourseInfo:
			if e.CourseID != id {
				continue
			}
			if e.Name != nil {
				offerName(*e.Name, e.Time)
			}
			if e.MobileAvailable != nil {
				v := "no"
				if *e.MobileAvailable {
					v = "yes"
				}
				if mobile == "" || e.Time.After(mobileT) || (e.Time.Equal(mobileT) && v == "no") {
					mobile, mobileT = v, e.Time
				}
			}
		}
	}
	return name, mobile
}
