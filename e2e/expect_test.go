package e2e

import (
	"reflect"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
)

// expectation answers what the service must answer, from the records produced
// so far, with internal/reference.
//
// reference.Model reads its whole history on every call (that is what keeps it
// obviously right), which for thousands of users over tens of thousands of
// events is too slow to ask once per user. Each user therefore gets a model of
// their own events plus the course-level facts: every course event, and per
// course the one enrollment-carried name that can win the name race (the
// reference takes the name of the latest time, ties to the greater name, over
// enrollments and course events alike, so the others cannot matter).
// TestPerUserModels checks this equals asking the whole model.
type expectation struct {
	policy    projection.Policy
	usernames map[int64]string // current username of every known, unretired user
	models    map[int64]*reference.Model
	courses   []projection.Event
}

func newExpectation(recs []record, policy projection.Policy) *expectation {
	var all []projection.Event
	for _, r := range recs {
		all = append(all, r.events()...)
	}
	whole := reference.Model{Events: all}
	x := &expectation{policy: policy, usernames: whole.Usernames(), models: map[int64]*reference.Model{}}

	bestName := map[string]projection.CourseInfo{}
	for _, e := range all {
		switch e := e.(type) {
		case projection.CourseInfo:
			x.courses = append(x.courses, e)
		case projection.Enrollment:
			if e.CourseName == nil {
				continue
			}
			b, ok := bestName[e.CourseID]
			if !ok || e.Time.After(b.Time) || (e.Time.Equal(b.Time) && *e.CourseName > *b.Name) {
				bestName[e.CourseID] = projection.CourseInfo{CourseID: e.CourseID, Name: e.CourseName, Time: e.Time}
			}
		}
	}
	for _, ci := range bestName {
		x.courses = append(x.courses, ci)
	}
	for _, e := range all {
		if id, ok := projection.UserOf(e); ok {
			m := x.models[id]
			if m == nil {
				m = &reference.Model{Events: append([]projection.Event(nil), x.courses...)}
				x.models[id] = m
			}
			m.Add(e)
		}
	}
	return x
}

// status is the expected answer for a user id at now.
func (x *expectation) status(userID int64, now time.Time) []reference.Entry {
	m := x.models[userID]
	if m == nil {
		return []reference.Entry{}
	}
	return m.Status(userID, now, x.policy)
}

// TestPerUserModels runs without Kafka: the per-user reduction answers as
// the whole model does, and the generated history has what the suite relies
// on (every kind of event, duplicates, creation times clear of the 30-day
// boundary, some just outside it).
func TestPerUserModels(t *testing.T) {
	policy := projection.DefaultPolicy()
	t0 := time.Now()
	h := generate(7, 300, 24, t0, policy.Window)
	recs := h.all()
	x := newExpectation(recs, policy)

	var all []projection.Event
	for _, r := range recs {
		all = append(all, r.events()...)
	}
	whole := reference.Model{Events: all}
	for _, now := range []time.Time{t0, t0.Add(20 * time.Minute)} {
		nonEmpty := 0
		for _, u := range h.users {
			want, got := whole.Status(u.id, now, policy), x.status(u.id, now)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("user %d at %v: per-user model %+v, whole model %+v", u.id, now, got, want)
			}
			if len(got) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < len(h.users)/2 {
			t.Fatalf("only %d of %d users have an answer", nonEmpty, len(h.users))
		}
	}

	kinds, ids := map[string]int{}, map[string]int{}
	lo, hi := h.boundaryZone()
	near := 0
	for _, r := range recs {
		kinds[r.Kind]++
		ids[r.ID]++
		if !r.Created.IsZero() {
			if !r.Created.Before(lo) && !r.Created.After(hi) {
				t.Fatalf("%s %s created at %v, inside the boundary zone [%v, %v]", r.Kind, r.ID, r.Created, lo, hi)
			}
			if r.Created.After(lo.Add(-30*time.Minute)) && r.Created.Before(hi.Add(30*time.Minute)) {
				near++
			}
		}
	}
	for _, k := range []string{kindEnrollCreated, kindEnrollChanged, kindUnenrolled, kindCatalog, kindCompletion,
		kindTracking, kindCourseJSON, kindRetiredJSON, kindEnrollJSON, kindCompletionJSON} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the history", k)
		}
	}
	dups := 0
	for _, n := range ids {
		if n > 1 {
			dups++
		}
	}
	if dups == 0 || near == 0 {
		t.Errorf("duplicates %d, creations near the boundary %d: want some of each", dups, near)
	}
	for _, r := range h.avro {
		if _, err := r.historyLine(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range append(append(append([]record(nil), h.courseJSON...), h.retiredJSON...), h.growJSON...) {
		if _, _, v, err := r.cloudEvent(); err != nil || containsByte(v, '|') {
			t.Fatalf("%s: %v (or a '|', kcat's key delimiter, in %s)", r.ID, err, v)
		}
	}
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
