package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The history is a small Open edX installation's event stream, generated here
// and sent three ways: produce.py lines (the real Open edX producer makes the
// Avro messages), native JSON CloudEvents through kcat, and projection events
// for the reference model — the last by a direct reading of
// shared/docs/events.md, never through the service's decoders.

// Kinds of records. The first six are produce.py's `type`s; the others are
// native JSON CloudEvents that the suite sends with kcat.
const (
	kindEnrollCreated = "enrollment.created"
	kindEnrollChanged = "enrollment.changed"
	kindUnenrolled    = "unenrollment.completed"
	kindCatalog       = "catalog_info.changed"
	kindCompletion    = "completion"
	kindTracking      = "tracking.other"

	kindCourseJSON     = "json:enrollstatus.course.v1"
	kindRetiredJSON    = "json:enrollstatus.user.retired.v1"
	kindEnrollJSON     = "json:enrollment.created"
	kindCompletionJSON = "json:completion"
)

// Open edX event types, as the JSON CloudEvents carry them.
const (
	ceEnrollmentCreated = "org.openedx.learning.course.enrollment.created.v1"
	ceTracking          = "org.openedx.analytics.tracking.event.emitted.v1"
	ceCourse            = "enrollstatus.course.v1"
	ceRetired           = "enrollstatus.user.retired.v1"
	completionName      = "edx.completion.block_completion.changed"
)

// record is one event of the history.
type record struct {
	Kind       string
	ID         string    // event_id / CloudEvent id; a duplicate shares it
	Time       time.Time // event time (ce_time, the tracking log's timestamp)
	UserID     int64
	Username   string
	CourseID   string
	CourseName string // "" when the producer has no name (openedx-events sends "")
	Mode       string
	Active     bool
	Created    time.Time // enrollment creation_date, completion created
	BlockID    string
	Name       string // tracking event name
	Mobile     *bool  // enrollstatus.course.v1
	NoName     bool   // enrollstatus.course.v1 without display_name
	Partition  int    // kcat -p; -1: kcat's partitioner, by key
}

// namedAt is a name valid from a time on.
type namedAt struct {
	from time.Time
	name string
}

func nameAt(names []namedAt, t time.Time) string {
	n := ""
	for _, v := range names {
		if !v.from.After(t) {
			n = v.name
		}
	}
	return n
}

type user struct {
	id    int64
	names []namedAt // sorted by from; names[0].from is zero
}

type course struct {
	id    string
	names []namedAt
}

// history is everything the suite sends, grouped by how it is sent.
type history struct {
	t0      time.Time
	window  time.Duration
	users   []user
	courses []course
	// avro goes through produce.py, shuffled (so no partition sees its
	// events in time order), with real duplicates (same event_id).
	avro []record
	// courseJSON and retiredJSON go through kcat, keyed, while the service
	// is being killed; growJSON goes to partitions added later.
	courseJSON  []record
	retiredJSON []record
	growJSON    []record
	retired     map[int64]bool
}

// generator holds what generate needs while it runs.
type generator struct {
	rng *rand.Rand
	h   *history
	n   int // event ids
}

// generate makes a history of nUsers users and nCourses courses whose times
// lie within ±60 days of t0.
func generate(seed uint64, nUsers, nCourses int, t0 time.Time, window time.Duration) *history {
	g := &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), h: &history{
		t0: t0.UTC().Truncate(time.Microsecond), window: window, retired: map[int64]bool{},
	}}
	g.courses(nCourses)
	g.users(nUsers)
	enrolled := g.enrollments()
	g.catalog()
	g.courseMetadata()
	g.retirements(enrolled)
	g.grow(enrolled)
	g.duplicate(0.02)
	return g.h
}

func (g *generator) id() string {
	g.n++
	// a version-4-shaped UUID, deterministic under the seed
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), uint64(g.n))
}

const day = 24 * time.Hour

// anyTime is uniform over t0 ± 60 days, to the microsecond (what ISO-8601
// strings from Python carry).
func (g *generator) anyTime() time.Time {
	span := int64(60 * day)
	return g.h.t0.Add(time.Duration(g.rng.Int64N(2*span) - span)).Truncate(time.Microsecond)
}

// after returns a time 1 minute to 20 days after t.
func (g *generator) after(t time.Time) time.Time {
	return t.Add(time.Minute + time.Duration(g.rng.Int64N(int64(20*day)))).Truncate(time.Microsecond)
}

// boundaryZone is where a creation time could fall on either side of
// now-window during the run: the suite takes `now` at every request, from
// t0-10m (clock skew of the generator's own t0 is nil) to far beyond any run
// (the test times out after 30m).
func (h *history) boundaryZone() (lo, hi time.Time) {
	b := h.t0.Add(-h.window)
	return b.Add(-10 * time.Minute), b.Add(45 * time.Minute)
}

// clear moves a creation time out of the boundary zone, so that every
// request, whenever it is made, agrees with the reference on recency.
func (g *generator) clear(t time.Time) time.Time {
	lo, hi := g.h.boundaryZone()
	if t.Before(lo) || t.After(hi) {
		return t
	}
	if t.Sub(lo) < hi.Sub(t) {
		return t.Add(-time.Hour)
	}
	return t.Add(time.Hour)
}

// nearBoundary is a creation time within half an hour of the zone, on either
// side: enrolled "29.9" and "30.1" days ago.
func (g *generator) nearBoundary() time.Time {
	lo, hi := g.h.boundaryZone()
	d := time.Minute + time.Duration(g.rng.Int64N(int64(29*time.Minute)))
	if g.rng.IntN(2) == 0 {
		return lo.Add(-d).Truncate(time.Microsecond)
	}
	return hi.Add(d).Truncate(time.Microsecond)
}

var (
	orgs   = []string{"MITx", "HarvardX", "edX", "DelftX", "UQx", "BerkeleyX"}
	titles = []string{
		"Introduction to Computer Science", "Circuits and Electronics", "Justice", "Data Science: R Basics",
		"Solar Energy", "Think. Create. Code.", "Physique quantique", "Физика твёрдого тела", "数学入门",
		"Ünïcödé & <Markup> \"Quotes\"", "Machine Learning with Python", "Climate Change: The Science",
		"Español para principiantes", "The Analytics Edge", "Entrepreneurship 101",
	}
	modes     = []string{"audit", "verified", "honor", "professional", "no-id-professional"}
	blockKind = []string{"problem", "video", "html", "problem", "problem"}
	trackName = []string{"edx.ui.lms.link_clicked", "play_video", "edx.ui.lms.sequence.next_selected", "problem_check"}
)

func (g *generator) courses(n int) {
	for i := range n {
		c := course{id: fmt.Sprintf("course-v1:%s+C%03d+%d_T%d", orgs[i%len(orgs)], 100+i, 2024+i%3, 1+i%3)}
		name := fmt.Sprintf("%s %d", titles[i%len(titles)], i)
		if i == 7 || i == 31 {
			name = "" // no producer ever tells this course's name: answers say null
		}
		c.names = []namedAt{{name: name}}
		g.h.courses = append(g.h.courses, c)
	}
	// renames (Studio's catalog_info.changed) of a third of the courses, at
	// random times, some of them in the future
	for i := range g.h.courses {
		c := &g.h.courses[i]
		if c.names[0].name == "" || g.rng.IntN(3) > 0 {
			continue
		}
		for r := range 1 + g.rng.IntN(2) {
			c.names = append(c.names, namedAt{from: g.anyTime(), name: fmt.Sprintf("%s (rev. %d)", c.names[0].name, r+1)})
		}
		sortNames(c.names)
	}
}

func sortNames(ns []namedAt) {
	for i := 1; i < len(ns); i++ {
		for j := i; j > 1 && ns[j].from.Before(ns[j-1].from); j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

// usernameFor gives most users an LMS-style name and some the characters the
// route must accept: Unicode word characters, spaces, '.', '@', '+', '-'.
func (g *generator) usernameFor(id int64) string {
	switch k := g.rng.IntN(100); {
	case k < 84:
		return fmt.Sprintf("learner%d", id)
	case k < 87:
		return fmt.Sprintf("Learner_%d", id)
	case k < 90:
		return fmt.Sprintf("maría.garcía%d", id)
	case k < 92:
		return fmt.Sprintf("jean luc %d", id)
	case k < 94:
		return fmt.Sprintf("o.brien+%d@example.org", id)
	case k < 96:
		return fmt.Sprintf("李明%d", id)
	case k < 98:
		return fmt.Sprintf("Ωmega-%d", id)
	default:
		return fmt.Sprintf("ÅSA_ÖBERG_%d", id)
	}
}

func (g *generator) users(n int) {
	for i := range n {
		id := int64(1000 + 3*i + g.rng.IntN(3))
		u := user{id: id, names: []namedAt{{name: g.usernameFor(id)}}}
		if g.rng.IntN(50) == 0 { // the LMS allows renames; the id stays
			u.names = append(u.names, namedAt{from: g.anyTime(), name: fmt.Sprintf("renamed_%d", id)})
		}
		g.h.users = append(g.h.users, u)
	}
}

// enrollments emits each user's enrollment lifecycles, completions and other
// tracking events, and returns the courses each user enrolled in.
func (g *generator) enrollments() map[int64][]int {
	h := g.h
	enrolled := map[int64][]int{}
	counts := []int{0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8, 10}
	for _, u := range h.users {
		for _, ci := range g.rng.Perm(len(h.courses))[:counts[g.rng.IntN(len(counts))]] {
			enrolled[u.id] = append(enrolled[u.id], ci)
			g.lifecycle(u, h.courses[ci])
		}
		if g.rng.IntN(30) == 0 { // progress in a course the user is not enrolled in
			c := h.courses[g.rng.IntN(len(h.courses))]
			created := g.clear(g.anyTime())
			g.completion(u, c, created)
		}
		for range g.rng.IntN(3) {
			t := g.anyTime()
			c := h.courses[g.rng.IntN(len(h.courses))]
			h.avro = append(h.avro, record{Kind: kindTracking, ID: g.id(), Time: t, UserID: u.id,
				Username: nameAt(u.names, t), CourseID: c.id, Name: trackName[g.rng.IntN(len(trackName))], Partition: -1})
		}
	}
	return enrolled
}

// lifecycle is one enrollment: created; maybe a mode change; maybe an
// unenrollment (the LMS sends enrollment.changed with is_active false and
// unenrollment.completed); maybe a re-enrollment (enrollment.changed with
// is_active true, same creation date). A few re-enrollments carry exactly the
// unenrollment's time: equal times must resolve the same way on every replay.
func (g *generator) lifecycle(u user, c course) {
	h := g.h
	created := g.clear(g.anyTime())
	if g.rng.IntN(30) == 0 {
		created = g.nearBoundary()
	}
	mode := modes[g.rng.IntN(len(modes))]
	emit := func(kind string, t time.Time, active bool) {
		h.avro = append(h.avro, record{Kind: kind, ID: g.id(), Time: t, UserID: u.id, Username: nameAt(u.names, t),
			CourseID: c.id, CourseName: nameAt(c.names, t), Mode: mode, Active: active, Created: created, Partition: -1})
	}
	t := created.Add(time.Duration(g.rng.Int64N(int64(2 * time.Second)))).Truncate(time.Microsecond)
	emit(kindEnrollCreated, t, true)
	if g.rng.IntN(4) == 0 {
		t = g.after(t)
		mode = modes[g.rng.IntN(len(modes))]
		emit(kindEnrollChanged, t, true)
	}
	if g.rng.IntN(4) == 0 {
		t = g.after(t)
		emit(kindEnrollChanged, t, false)
		emit(kindUnenrolled, t, false)
		if g.rng.IntN(5) < 2 {
			if g.rng.IntN(10) > 0 {
				t = g.after(t)
			}
			emit(kindEnrollChanged, t, true)
		}
	}
	for range []int{0, 0, 1, 1, 1, 2, 2, 3, 4}[g.rng.IntN(9)] {
		g.completion(u, c, g.clear(created.Add(time.Duration(g.rng.Int64N(int64(70*day)))).Truncate(time.Microsecond)))
	}
}

// completion is edx-completion's tracking event for one block, emitted once
// or twice (submit_completion emits on every call: same created, later
// modified).
func (g *generator) completion(u user, c course, created time.Time) {
	kind := blockKind[g.rng.IntN(len(blockKind))]
	block := fmt.Sprintf("block-v1:%s+type@%s+block@%016x", c.id[len("course-v1:"):], kind, g.rng.Uint64())
	t := created
	for i := range 1 + g.rng.IntN(3)/2 {
		if i > 0 {
			t = g.after(t)
		}
		g.h.avro = append(g.h.avro, record{Kind: kindCompletion, ID: g.id(), Time: t, UserID: u.id,
			Username: nameAt(u.names, t), CourseID: c.id, BlockID: block, Created: created, Partition: -1})
	}
}

// catalog emits Studio's catalog_info.changed: the first name of two thirds
// of the courses when they were set up, and every rename.
func (g *generator) catalog() {
	h := g.h
	for _, c := range h.courses {
		for i, n := range c.names {
			if n.name == "" {
				continue
			}
			t := n.from
			if i == 0 {
				if g.rng.IntN(3) == 0 {
					continue
				}
				t = h.t0.Add(-70*day + time.Duration(g.rng.Int64N(int64(5*day)))).Truncate(time.Microsecond)
			}
			h.avro = append(h.avro, record{Kind: kindCatalog, ID: g.id(), Time: t, CourseID: c.id, CourseName: n.name, Partition: -1})
		}
	}
}

// courseMetadata is the suite's own enrollstatus.course.v1 events: mobile
// availability of 20 courses (6 not available, 2 that changed their mind),
// one sent twice.
func (g *generator) courseMetadata() {
	h := g.h
	yes, no := true, false
	add := func(ci int, t time.Time, mobile *bool) {
		c := h.courses[ci]
		r := record{Kind: kindCourseJSON, ID: g.id(), Time: t, CourseID: c.id, CourseName: nameAt(c.names, t), Mobile: mobile, Partition: -1}
		r.NoName = r.CourseName == "" || g.rng.IntN(2) == 0
		if r.NoName {
			r.CourseName = ""
		}
		h.courseJSON = append(h.courseJSON, r)
	}
	for k, ci := range g.rng.Perm(len(h.courses))[:20] {
		t := g.anyTime()
		switch {
		case k < 12:
			add(ci, t, &yes)
		case k < 18:
			add(ci, t, &no)
		case k == 18:
			add(ci, t, &no)
			add(ci, g.after(t), &yes)
		default:
			add(ci, t, &yes)
			add(ci, g.after(t), &no)
		}
	}
	h.courseJSON = append(h.courseJSON, h.courseJSON[0])
}

// retirements: three users with enrollments ask to be forgotten; one request
// arrives twice.
func (g *generator) retirements(enrolled map[int64][]int) {
	h := g.h
	for _, u := range h.users {
		if len(h.retiredJSON) == 3 {
			break
		}
		if len(enrolled[u.id]) >= 2 && g.rng.IntN(20) == 0 {
			t := g.anyTime()
			h.retiredJSON = append(h.retiredJSON, record{Kind: kindRetiredJSON, ID: g.id(), Time: t,
				UserID: u.id, Username: nameAt(u.names, t), Partition: -1})
			h.retired[u.id] = true
		}
	}
	if n := len(h.retiredJSON); n > 0 {
		h.retiredJSON = append(h.retiredJSON, h.retiredJSON[n-1])
	}
}

// grow is what the suite writes onto partitions added while the service
// runs: new enrollments of 120 users (one of them retired: dropped) with
// some completions, as Open edX-typed JSON CloudEvents, and a course that
// becomes mobile-available under a new name (fan-out to its members).
func (g *generator) grow(enrolled map[int64][]int) {
	h := g.h
	parts := []int{3, 4} // the partitions the suite adds to dev-enrollstatus-events
	pick := g.rng.Perm(len(h.users))[:120]
	for _, u := range h.users { // one retired user's later events must be dropped
		if h.retired[u.id] {
			pick[0] = indexOfUser(h.users, u.id)
			break
		}
	}
	for k, ui := range pick {
		u := h.users[ui]
		ci := g.rng.IntN(len(h.courses))
		for contains(enrolled[u.id], ci) {
			ci = (ci + 1) % len(h.courses)
		}
		enrolled[u.id] = append(enrolled[u.id], ci)
		c := h.courses[ci]
		created := g.clear(h.t0.Add(-time.Duration(g.rng.Int64N(int64(40 * day)))).Truncate(time.Microsecond))
		t := created.Add(time.Millisecond)
		p := parts[k%2]
		h.growJSON = append(h.growJSON, record{Kind: kindEnrollJSON, ID: g.id(), Time: t, UserID: u.id,
			Username: nameAt(u.names, t), CourseID: c.id, CourseName: nameAt(c.names, t), Mode: "verified",
			Active: true, Created: created, Partition: p})
		if g.rng.IntN(2) == 0 {
			done := g.clear(created.Add(time.Duration(g.rng.Int64N(int64(10 * day)))).Truncate(time.Microsecond))
			h.growJSON = append(h.growJSON, record{Kind: kindCompletionJSON, ID: g.id(), Time: done, UserID: u.id,
				CourseID: c.id, BlockID: fmt.Sprintf("block-v1:%s+type@problem+block@grow%d", c.id[len("course-v1:"):], k),
				Created: done, Partition: parts[(k+1)%2]})
		}
	}
	// the first course told "not mobile-available" becomes available, renamed,
	// after everything else
	for _, r := range h.courseJSON {
		if r.Mobile != nil && !*r.Mobile {
			yes := true
			h.growJSON = append(h.growJSON, record{Kind: kindCourseJSON, ID: g.id(), Time: h.t0.Add(400 * day),
				CourseID: r.CourseID, CourseName: "Now on mobile: " + r.CourseID, Mobile: &yes, Partition: parts[0]})
			break
		}
	}
}

func indexOfUser(us []user, id int64) int {
	for i, u := range us {
		if u.id == id {
			return i
		}
	}
	return -1
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// duplicate repeats a fraction of the produce.py events (producer retries,
// replays: the same event_id again) and shuffles them all.
func (g *generator) duplicate(fraction float64) {
	h := g.h
	n := len(h.avro)
	for i := range n {
		if g.rng.Float64() < fraction {
			h.avro = append(h.avro, h.avro[i])
		}
	}
	g.rng.Shuffle(len(h.avro), func(i, j int) { h.avro[i], h.avro[j] = h.avro[j], h.avro[i] })
}

// all is every record of the history.
func (h *history) all() []record {
	out := append([]record(nil), h.avro...)
	out = append(out, h.courseJSON...)
	out = append(out, h.retiredJSON...)
	return append(out, h.growJSON...)
}

// ---------------------------------------------------------------------------
// Wire forms

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// historyLine is the record as one line of produce.py's input (e2e/README.md,
// "History format").
func (r record) historyLine() ([]byte, error) {
	m := map[string]any{"type": r.Kind, "event_id": r.ID, "time": iso(r.Time)}
	switch r.Kind {
	case kindEnrollCreated, kindEnrollChanged, kindUnenrolled:
		m["user_id"], m["username"], m["email"] = r.UserID, r.Username, fmt.Sprintf("learner%d@example.org", r.UserID)
		m["course_id"], m["course_name"], m["mode"] = r.CourseID, r.CourseName, r.Mode
		m["is_active"], m["creation_date"] = r.Active, iso(r.Created)
	case kindCatalog:
		m["course_id"], m["course_name"] = r.CourseID, r.CourseName
	case kindCompletion:
		m["user_id"], m["username"], m["course_id"] = r.UserID, r.Username, r.CourseID
		m["block_id"], m["created"], m["modified"] = r.BlockID, iso(r.Created), iso(r.Time)
	case kindTracking:
		m["user_id"], m["username"], m["course_id"], m["name"] = r.UserID, r.Username, r.CourseID, r.Name
	default:
		return nil, fmt.Errorf("record kind %q is not produce.py's", r.Kind)
	}
	return json.Marshal(m)
}

// cloudEvent is the record as a native JSON CloudEvent (events.md §3): its
// key, ce_type and value.
func (r record) cloudEvent() (key, ceType string, value []byte, err error) {
	ce := map[string]any{"specversion": "1.0", "id": r.ID, "time": iso(r.Time)}
	var data any
	switch r.Kind {
	case kindCourseJSON:
		key, ceType = r.CourseID, ceCourse
		d := map[string]any{"course_key": r.CourseID, "mobile_available": *r.Mobile}
		if !r.NoName {
			d["display_name"] = r.CourseName
		}
		data, ce["source"] = d, "e2e/catalog"
	case kindRetiredJSON:
		key, ceType = strconv.FormatInt(r.UserID, 10), ceRetired
		data, ce["source"] = map[string]any{"user_id": r.UserID, "username": r.Username}, "e2e/retirement"
	case kindEnrollJSON:
		key, ceType = r.CourseID, ceEnrollmentCreated
		data = map[string]any{"enrollment": map[string]any{
			"user": map[string]any{"id": r.UserID, "is_active": true, "pii": map[string]any{
				"username": r.Username, "email": fmt.Sprintf("learner%d@example.org", r.UserID), "name": ""}},
			"course":        map[string]any{"course_key": r.CourseID, "display_name": r.CourseName, "start": nil, "end": nil},
			"mode":          r.Mode,
			"is_active":     r.Active,
			"creation_date": iso(r.Created),
			"created_by":    nil,
		}}
		ce["source"] = "openedx/lms/web"
	case kindCompletionJSON:
		key, ceType = completionName, ceTracking
		// tracking-log data as a JSON object, which events.md §3 allows
		data = map[string]any{"tracking_log": map[string]any{
			"name": completionName, "timestamp": iso(r.Time),
			"data": map[string]any{"user_id": r.UserID, "course_id": r.CourseID, "block_id": r.BlockID,
				"block_type": "problem", "completion": 1.0, "modified": iso(r.Time), "created": iso(r.Created)},
			"context": `{"path":"/e2e"}`,
		}}
		ce["source"] = "openedx/lms/web"
	default:
		return "", "", nil, fmt.Errorf("record kind %q is not a kcat CloudEvent", r.Kind)
	}
	ce["type"], ce["data"] = ceType, data
	value, err = json.Marshal(ce)
	return key, ceType, value, err
}

// ---------------------------------------------------------------------------
// Meaning

// events is what the record means to the projection, read straight from
// shared/docs/events.md: enrollments (unenrollment.completed is inactive,
// the others say is_active; creation from creation_date; the event time is
// the version's time), completions (their creation time), course names and
// availability, retirements. Other tracking events mean nothing.
func (r record) events() []projection.Event {
	name := func() *string {
		if r.CourseName == "" || r.NoName { // "" is openedx-events' "no name"
			return nil
		}
		s := r.CourseName
		return &s
	}
	switch r.Kind {
	case kindEnrollCreated, kindEnrollChanged, kindEnrollJSON:
		return []projection.Event{projection.Enrollment{UserID: r.UserID, Username: r.Username, CourseID: r.CourseID,
			CourseName: name(), Mode: r.Mode, Active: r.Active, Created: r.Created, Time: r.Time}}
	case kindUnenrolled:
		return []projection.Event{projection.Enrollment{UserID: r.UserID, Username: r.Username, CourseID: r.CourseID,
			CourseName: name(), Mode: r.Mode, Active: false, Created: r.Created, Time: r.Time}}
	case kindCatalog:
		return []projection.Event{projection.CourseInfo{CourseID: r.CourseID, Name: name(), Time: r.Time}}
	case kindCourseJSON:
		return []projection.Event{projection.CourseInfo{CourseID: r.CourseID, Name: name(), MobileAvailable: r.Mobile, Time: r.Time}}
	case kindCompletion, kindCompletionJSON:
		return []projection.Event{projection.Completion{UserID: r.UserID, CourseID: r.CourseID, BlockID: r.BlockID,
			Created: r.Created, Time: r.Time}}
	case kindRetiredJSON:
		return []projection.Event{projection.Retirement{UserID: r.UserID, Username: r.Username, Time: r.Time}}
	}
	return nil
}
