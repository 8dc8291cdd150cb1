// Package synth generates realistic synthetic Open edX traffic as native
// CloudEvents JSON messages: enrollments, unenrollments, re-enrollments,
// course renames, mobile availability and (mostly) block completions, keyed
// by course as the event bus keys them. The demo, load tests and benchmarks
// use it; it is deterministic for a given seed.
package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Message is one Kafka record to produce.
type Message struct {
	// Topic is where the LMS would publish it, without the prefix: see
	// TopicFor.
	Topic string
	Key   []byte
	Value []byte
	// Headers mirror the event bus's ce_* headers, so tools that route by
	// header see the same thing.
	Headers map[string]string
}

// TopicFor returns the topic (without the EVENT_BUS_TOPIC_PREFIX) on which
// Open edX publishes an event type; see testdata/README.md for the sources.
func TopicFor(ceType string) string {
	switch ceType {
	case "org.openedx.learning.course.enrollment.created.v1", "org.openedx.learning.course.enrollment.changed.v1":
		return "learning-course-enrollment-lifecycle"
	case "org.openedx.learning.course.unenrollment.completed.v1":
		return "course-unenrollment-lifecycle"
	case "org.openedx.content_authoring.course.catalog_info.changed.v1":
		return "course-catalog-info-changed"
	case "org.openedx.analytics.tracking.event.emitted.v1":
		return "analytics"
	}
	return "enrollstatus-events"
}

// Topics are every topic TopicFor returns.
var Topics = []string{"learning-course-enrollment-lifecycle", "course-unenrollment-lifecycle",
	"course-catalog-info-changed", "analytics", "enrollstatus-events"}

// Generator makes a history over a fixed population.
type Generator struct {
	rng     *rand.Rand
	now     time.Time
	Users   int
	Courses []Course
	seq     int
	// enrolled[u] lists course indexes user u is enrolled in, to make
	// completions and unenrollments plausible.
	enrolled map[int][]int
}

// Course is a synthetic course.
type Course struct {
	Key    string
	Name   string
	Mobile bool
}

var orgs = []string{"edX", "MITx", "HarvardX", "UQx", "Université_Paris", "東京大学"}
var subjects = []string{"Demonstration Course", "Introduction to Go", "Data Structures", "Linear Algebra",
	"Histoire de l'art", "Физика", "Machine Learning", "Ünïcödé & <Symbols>", "Statistics 101", "Astronomy"}

// New returns a generator of users and courses, with times around now.
func New(seed uint64, users, courses int, now time.Time) *Generator {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	g := &Generator{rng: rng, now: now, Users: users, enrolled: map[int][]int{}}
	for i := range courses {
		org := orgs[i%len(orgs)]
		g.Courses = append(g.Courses, Course{
			Key:    fmt.Sprintf("course-v1:%s+C%03d+%d_T%d", org, i, 2024+i%3, 1+i%3),
			Name:   fmt.Sprintf("%s %d", subjects[i%len(subjects)], i),
			Mobile: i%10 != 9, // one course in ten is not on mobile
		})
	}
	return g
}

// Username is the username of user id.
func Username(id int) string { return fmt.Sprintf("learner%d", id) }

// ago returns a time up to maxDays days before now, microsecond precision.
func (g *Generator) ago(maxDays int) time.Time {
	d := time.Duration(g.rng.Int64N(int64(maxDays) * int64(24*time.Hour)))
	return g.now.Add(-d).Truncate(time.Microsecond)
}

// Catalog returns one enrollstatus.course.v1 event per course: names and
// mobile availability.
func (g *Generator) Catalog() []Message {
	out := make([]Message, 0, len(g.Courses))
	for _, c := range g.Courses {
		out = append(out, g.event("enrollstatus.course.v1", c.Key, g.now.Add(-90*24*time.Hour), map[string]any{
			"course_key": c.Key, "display_name": c.Name, "mobile_available": c.Mobile,
		}))
	}
	return out
}

// History returns n events of a plausible mix: about 70% completions, 20%
// enrollments, the rest unenrollments, re-enrollments, renames and other
// tracking events. Event times spread over the last 60 days.
func (g *Generator) History(n int) []Message {
	out := make([]Message, 0, n)
	for len(out) < n {
		out = append(out, g.Next(60))
	}
	return out
}

// Next returns one event with a time up to maxDays days ago.
func (g *Generator) Next(maxDays int) Message {
	uid := 1 + g.rng.IntN(g.Users)
	courses := g.enrolled[uid]
	k := g.rng.IntN(100)
	switch {
	case len(courses) == 0 || k < 20:
		ci := g.rng.IntN(len(g.Courses))
		g.enrolled[uid] = append(courses, ci)
		at := g.ago(maxDays)
		return g.enrollment("org.openedx.learning.course.enrollment.created.v1", uid, ci, true, at, at)
	case k < 90:
		ci := courses[g.rng.IntN(len(courses))]
		created := g.ago(maxDays)
		return g.completion(uid, ci, created)
	case k < 94:
		ci := courses[g.rng.IntN(len(courses))]
		return g.enrollment("org.openedx.learning.course.unenrollment.completed.v1", uid, ci, false, g.ago(maxDays+30), g.ago(maxDays))
	case k < 97:
		ci := courses[g.rng.IntN(len(courses))]
		return g.enrollment("org.openedx.learning.course.enrollment.changed.v1", uid, ci, true, g.ago(maxDays+30), g.ago(maxDays))
	case k < 98:
		ci := g.rng.IntN(len(g.Courses))
		c := &g.Courses[ci]
		c.Name = fmt.Sprintf("%s (rev %d)", subjects[ci%len(subjects)], g.rng.IntN(100))
		return g.event("org.openedx.content_authoring.course.catalog_info.changed.v1", c.Key, g.ago(maxDays), map[string]any{
			"catalog_info": map[string]any{"course_key": c.Key, "name": c.Name, "hidden": false, "invitation_only": false},
		})
	default:
		ci := g.rng.IntN(len(g.Courses))
		return g.event("org.openedx.analytics.tracking.event.emitted.v1", g.Courses[ci].Key, g.ago(maxDays), map[string]any{
			"tracking_log": map[string]any{"name": "edx.video.played", "timestamp": g.ago(maxDays).Format(time.RFC3339Nano),
				"data": `{"id":"video"}`, "context": "{}"},
		})
	}
}

func (g *Generator) enrollment(ceType string, uid, ci int, active bool, created, at time.Time) Message {
	c := g.Courses[ci]
	if created.After(at) {
		created = at
	}
	return g.event(ceType, c.Key, at, map[string]any{
		"enrollment": map[string]any{
			"user": map[string]any{"id": uid, "is_active": true,
				"pii": map[string]any{"username": Username(uid), "email": Username(uid) + "@example.com", "name": "Learner"}},
			"course":        map[string]any{"course_key": c.Key, "display_name": c.Name},
			"mode":          []string{"audit", "verified", "honor"}[g.rng.IntN(3)],
			"is_active":     active,
			"creation_date": created.Format("2006-01-02T15:04:05.000000+00:00"),
			"created_by":    nil,
		},
	})
}

func (g *Generator) completion(uid, ci int, created time.Time) Message {
	c := g.Courses[ci]
	block := fmt.Sprintf("block-v1:%s+type@problem+block@%08x", c.Key[len("course-v1:"):], g.rng.Uint32())
	data, _ := json.Marshal(map[string]any{
		"user_id": uid, "course_id": c.Key, "block_id": block, "block_type": "problem", "completion": 1.0,
		"created":  created.Format("2006-01-02T15:04:05.000000+00:00"),
		"modified": created.Format("2006-01-02T15:04:05.000000+00:00"),
	})
	return g.event("org.openedx.analytics.tracking.event.emitted.v1", c.Key, created, map[string]any{
		"tracking_log": map[string]any{
			"name": "edx.completion.block_completion.changed", "timestamp": created.Format(time.RFC3339Nano),
			"data": string(data), "context": `{"course_id":"` + c.Key + `"}`,
		},
	})
}

func (g *Generator) event(ceType, key string, at time.Time, data map[string]any) Message {
	g.seq++
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", g.rng.Uint32(), g.seq)
	v, err := json.Marshal(map[string]any{
		"specversion": "1.0", "type": ceType, "id": id, "source": "openedx/lms/web",
		"time": at.UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return Message{Topic: TopicFor(ceType), Key: []byte(key), Value: v, Headers: map[string]string{
		"ce_type": ceType, "ce_id": id, "ce_source": "openedx/lms/web", "ce_specversion": "1.0",
		"ce_time": at.UTC().Format(time.RFC3339Nano), "content-type": "application/json",
	}}
}
