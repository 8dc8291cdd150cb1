package projection_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func days(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

func ptr[T any](v T) *T { return &v }

const c1, c2, c3 = "course-v1:A+1+R", "course-v1:B+2+R", "course-v1:C+3+R"

func enroll(course string, created, at time.Time, active bool) projection.Enrollment {
	return projection.Enrollment{UserID: 7, Username: "alice", CourseID: course,
		Mode: "audit", Active: active, Created: created, Time: at}
}

func complete(course string, created time.Time) projection.Completion {
	return projection.Completion{UserID: 7, CourseID: course, BlockID: "b", Created: created, Time: created}
}

// apply builds a record the way the store does: user events into the record,
// course knowledge merged per course and copied into the record's view.
func apply(events ...projection.Event) projection.User {
	u := projection.User{ID: 7}
	metas := map[string]projection.CourseMeta{}
	for _, e := range events {
		u.Apply(e)
		if c, m, ok := projection.MetaOf(e); ok {
			metas[c] = metas[c].Merge(m)
		}
	}
	for c, m := range metas {
		u.SetView(c, m.View())
	}
	return u
}

func TestStatusRules(t *testing.T) {
	type want struct {
		course string
		active bool
	}
	tests := []struct {
		name   string
		events []projection.Event
		policy func(*projection.Policy)
		want   []want
	}{
		{"no events", nil, nil, nil},
		{"enrolled 29 days ago is recent", []projection.Event{enroll(c1, days(29), days(29), true)}, nil,
			[]want{{c1, true}}},
		{"enrolled 31 days ago is not", []projection.Event{enroll(c1, days(31), days(31), true)}, nil,
			[]want{{c1, false}}},
		{"enrolled exactly 30 days ago is not (strict >)", []projection.Event{enroll(c1, days(30), days(30), true)}, nil,
			[]want{{c1, false}}},
		{"enrolled 30 days minus 1µs ago is", []projection.Event{enroll(c1, days(30).Add(time.Microsecond), days(30), true)}, nil,
			[]want{{c1, true}}},
		{"completion exactly 30 days ago is recent (>=)", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c1, days(30))}, nil, []want{{c1, true}}},
		{"completion 29 days ago is recent", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c1, days(29))}, nil, []want{{c1, true}}},
		{"completion 31 days ago is not", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c1, days(31))}, nil, []want{{c1, false}}},
		{"completion 1µs before the window is not", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c1, days(30).Add(-time.Microsecond))}, nil, []want{{c1, false}}},
		{"completion in another course does not count", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c2, days(1))}, nil, []want{{c1, false}}},
		{"the latest completion counts", []projection.Event{
			enroll(c1, days(100), days(100), true), complete(c1, days(50)), complete(c1, days(2)), complete(c1, days(40))},
			nil, []want{{c1, true}}},
		{"unenrolled course is dropped", []projection.Event{
			enroll(c1, days(10), days(10), true), enroll(c1, days(10), days(5), false)}, nil, nil},
		{"re-enrolled course is back", []projection.Event{
			enroll(c1, days(40), days(40), true), enroll(c1, days(40), days(20), false), enroll(c1, days(40), days(3), true)},
			nil, []want{{c1, false}}},
		{"older unenrollment arriving late loses", []projection.Event{
			enroll(c1, days(10), days(3), true), enroll(c1, days(10), days(5), false)}, nil, []want{{c1, true}}},
		{"equal times: unenrollment wins", []projection.Event{
			enroll(c1, days(10), days(3), true), enroll(c1, days(10), days(3), false)}, nil, nil},
		{"completions without enrollment answer nothing", []projection.Event{complete(c1, days(1))}, nil, nil},
		{"byte-wise course order", []projection.Event{
			enroll("course-v1:b+1+R", days(100), days(100), true),
			enroll("course-v1:B+1+R", days(100), days(100), true),
			enroll("course-v1:a+1+R", days(1), days(1), true)}, nil,
			[]want{{"course-v1:B+1+R", false}, {"course-v1:a+1+R", true}, {"course-v1:b+1+R", false}}},
		{"limit takes the first courses", []projection.Event{
			enroll(c3, days(1), days(1), true), enroll(c1, days(1), days(1), true), enroll(c2, days(1), days(1), true)},
			func(p *projection.Policy) { p.Limit = 2 }, []want{{c1, true}, {c2, true}}},
		{"limit ignores inactive enrollments", []projection.Event{
			enroll(c1, days(1), days(1), false), enroll(c2, days(1), days(1), true), enroll(c3, days(1), days(1), true)},
			func(p *projection.Policy) { p.Limit = 2 }, []want{{c2, true}, {c3, true}}},
		{"limit applies before the mobile filter", []projection.Event{
			enroll(c1, days(1), days(1), true), enroll(c2, days(1), days(1), true), enroll(c3, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(false), Time: days(1)}},
			func(p *projection.Policy) { p.Limit = 2 }, []want{{c2, true}}},
		{"mobile unavailable dropped, unknown kept", []projection.Event{
			enroll(c1, days(1), days(1), true), enroll(c2, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(false), Time: days(1)}},
			nil, []want{{c2, true}}},
		{"strict mobile filter drops unknown", []projection.Event{
			enroll(c1, days(1), days(1), true), enroll(c2, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(true), Time: days(1)}},
			func(p *projection.Policy) { p.Mobile = projection.MobileStrict }, []want{{c1, true}}},
		{"mobile filter off keeps unavailable", []projection.Event{
			enroll(c1, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(false), Time: days(1)}},
			func(p *projection.Policy) { p.Mobile = projection.MobileOff }, []want{{c1, true}}},
		{"later availability wins", []projection.Event{
			enroll(c1, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(true), Time: days(2)},
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(false), Time: days(5)}},
			nil, []want{{c1, true}}},
		{"window is configurable", []projection.Event{enroll(c1, days(5), days(5), true)},
			func(p *projection.Policy) { p.Window = 3 * 24 * time.Hour }, []want{{c1, false}}},
		{"limit zero answers nothing", []projection.Event{enroll(c1, days(5), days(5), true)},
			func(p *projection.Policy) { p.Limit = 0 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := projection.DefaultPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			u := apply(tt.events...)
			got := u.Status(now, p)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d entries %+v, want %d %+v", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if got[i].CourseID != w.course || got[i].RecentlyActive != w.active {
					t.Errorf("entry %d = %s/%v, want %s/%v", i, got[i].CourseID, got[i].RecentlyActive, w.course, w.active)
				}
			}
		})
	}
}

func TestCourseNames(t *testing.T) {
	tests := []struct {
		name     string
		events   []projection.Event
		wantName *string
	}{
		{"unknown name is null", []projection.Event{enroll(c1, days(1), days(1), true)}, nil},
		{"name from the enrollment", []projection.Event{func() projection.Event {
			e := enroll(c1, days(1), days(1), true)
			e.CourseName = ptr("Demo")
			return e
		}()}, ptr("Demo")},
		{"rename after enrollment wins", []projection.Event{
			func() projection.Event { e := enroll(c1, days(5), days(5), true); e.CourseName = ptr("Old"); return e }(),
			projection.CourseInfo{CourseID: c1, Name: ptr("New"), Time: days(2)}}, ptr("New")},
		{"old enrollment replayed after rename loses", []projection.Event{
			projection.CourseInfo{CourseID: c1, Name: ptr("New"), Time: days(2)},
			func() projection.Event { e := enroll(c1, days(5), days(5), true); e.CourseName = ptr("Old"); return e }()},
			ptr("New")},
		{"empty name is a name", []projection.Event{enroll(c1, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, Name: ptr(""), Time: days(2)}}, ptr("")},
		{"availability-only info keeps the name", []projection.Event{enroll(c1, days(1), days(1), true),
			projection.CourseInfo{CourseID: c1, Name: ptr("N"), Time: days(3)},
			projection.CourseInfo{CourseID: c1, MobileAvailable: ptr(true), Time: days(1)}}, ptr("N")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := apply(tt.events...)
			got := u.Status(now, projection.DefaultPolicy())
			if len(got) != 1 {
				t.Fatalf("got %d entries, want 1", len(got))
			}
			switch {
			case tt.wantName == nil && got[0].HasCourseName:
				t.Errorf("name %q, want null", got[0].CourseName)
			case tt.wantName != nil && (!got[0].HasCourseName || got[0].CourseName != *tt.wantName):
				t.Errorf("name %q (known %v), want %q", got[0].CourseName, got[0].HasCourseName, *tt.wantName)
			}
		})
	}
}

func TestLimitDefaultIs500(t *testing.T) {
	var events []projection.Event
	for i := range 600 {
		events = append(events, enroll(fmt.Sprintf("course-v1:O+%04d+R", i), days(1), days(1), true))
	}
	u := apply(events...)
	got := u.Status(now, projection.DefaultPolicy())
	if len(got) != 500 || got[499].CourseID != "course-v1:O+0499+R" {
		t.Fatalf("got %d entries ending %q, want 500 ending course-v1:O+0499+R", len(got), got[len(got)-1].CourseID)
	}
}

func TestUsername(t *testing.T) {
	u := apply(
		projection.UserInfo{UserID: 7, Username: "bob", Time: days(1)},
		projection.UserInfo{UserID: 7, Username: "robert", Time: days(3)},
	)
	if u.Username != "bob" {
		t.Fatalf("username %q, want the latest, bob", u.Username)
	}
}

func TestLowerUsername(t *testing.T) {
	tests := map[string]string{
		"Alice":         "alice",
		"ÀLİCE":         "àli\u0307ce",
		"ΟΔΟΣ":          "οδος",
		"ΣΑΣ ΣΑΣ":       "σας σας",
		"Σ":             "σ",
		"A.B-C_D+E@F G": "a.b-c_d+e@f g",
	}
	for in, want := range tests {
		if got := projection.LowerUsername(in); got != want {
			t.Errorf("LowerUsername(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidUsername(t *testing.T) {
	for _, ok := range []string{"alice", "a.b@c+d-e_f g", "Ünïcödé", "名前", "x١٢"} {
		if !projection.ValidUsername(ok) {
			t.Errorf("ValidUsername(%q) = false, want true", ok)
		}
	}
	for _, bad := range []string{"", "a/b", "a%b", "a\x00", "a\nb", "..\\x", "a#b", "a\xffb", "e\u0301"} {
		if projection.ValidUsername(bad) {
			t.Errorf("ValidUsername(%q) = true, want false", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []projection.Event{
		projection.Enrollment{UserID: 0, CourseID: c1, Created: now, Time: now},
		projection.Enrollment{UserID: 1, CourseID: "", Created: now, Time: now},
		projection.Enrollment{UserID: 1, CourseID: c1, Time: now},
		projection.Enrollment{UserID: 1, CourseID: "a\x00b", Created: now, Time: now},
		projection.Completion{UserID: 1, CourseID: c1},
		projection.CourseInfo{CourseID: c1},
		projection.UserInfo{UserID: 1, Time: now},
		projection.Retirement{UserID: -1},
	}
	for _, e := range bad {
		if e.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", e)
		}
	}
	good := []projection.Event{
		enroll(c1, now, now, true), complete(c1, now),
		projection.CourseInfo{CourseID: c1, Time: now},
		projection.UserInfo{UserID: 1, Username: "x", Time: now},
		projection.Retirement{UserID: 1},
	}
	for _, e := range good {
		if err := e.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", e, err)
		}
	}
}

func TestFullRecordKeepsSmallestCourses(t *testing.T) {
	// The same events in two orders give the same bounded record.
	var events []projection.Event
	for i := range projection.MaxCoursesPerUser + 50 {
		events = append(events, enroll(fmt.Sprintf("course-v1:O+%06d+R", (i*7919)%(projection.MaxCoursesPerUser+50)), days(1), days(1), true))
	}
	forward := apply(events...)
	var backward []projection.Event
	for i := len(events) - 1; i >= 0; i-- {
		backward = append(backward, events[i])
	}
	reverse := apply(backward...)
	if len(forward.Courses) != projection.MaxCoursesPerUser || len(reverse.Courses) != projection.MaxCoursesPerUser {
		t.Fatalf("records hold %d and %d courses, want %d", len(forward.Courses), len(reverse.Courses), projection.MaxCoursesPerUser)
	}
	last := fmt.Sprintf("course-v1:O+%06d+R", projection.MaxCoursesPerUser-1)
	if forward.Courses[len(forward.Courses)-1].CourseID != last || reverse.Courses[len(reverse.Courses)-1].CourseID != last {
		t.Fatalf("records end at %s and %s, want %s", forward.Courses[len(forward.Courses)-1].CourseID,
			reverse.Courses[len(reverse.Courses)-1].CourseID, last)
	}
}

// TestInsertCoursesAsApply: entries inserted at once are where Apply puts
// them one by one, and a record they would overflow is left alone.
func TestInsertCoursesAsApply(t *testing.T) {
	u := apply(enroll(c2, days(1), days(1), true))
	added := []string{c1, c3, "course-v1:Z+9+R"}
	if !u.InsertCourses(added) {
		t.Fatal("InsertCourses refused 3 courses into a record of 1")
	}
	want := apply(enroll(c2, days(1), days(1), true))
	for _, c := range []string{c3, "course-v1:Z+9+R", c1} {
		want.Apply(projection.Completion{UserID: 7, CourseID: c})
	}
	if len(u.Courses) != len(want.Courses) {
		t.Fatalf("%d entries, want %d", len(u.Courses), len(want.Courses))
	}
	for i := range want.Courses {
		if u.Courses[i] != want.Courses[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, u.Courses[i], want.Courses[i])
		}
	}

	full := projection.User{Courses: make([]projection.UserCourse, projection.MaxCoursesPerUser-1)}
	if full.InsertCourses([]string{c1, c2}) || len(full.Courses) != projection.MaxCoursesPerUser-1 {
		t.Fatalf("InsertCourses past the bound: %d entries", len(full.Courses))
	}
}
