package reference

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// RandomHistory returns n events over a small space of users, courses and
// times, so that collisions the rules must resolve (equal event times,
// renames, re-enrollments, retirements) happen often.
func RandomHistory(rng *rand.Rand, users, courses, n int, now time.Time) []projection.Event {
	// Times on a coarse grid of hours over 60 days, so ties are frequent and
	// both sides of the 30-day boundary are covered.
	at := func() time.Time {
		return now.Add(-time.Duration(rng.IntN(60*24)) * time.Hour)
	}
	names := []string{"Demonstration Course", "Intro to Go", "Физика", "数学", "Ünïcödé <&>"}
	userName := func(id int) string {
		if rng.IntN(4) == 0 {
			return fmt.Sprintf("User_%d_v%d", id, rng.IntN(2))
		}
		return fmt.Sprintf("user_%d", id)
	}
	course := func() string { return fmt.Sprintf("course-v1:Org+C%d+Run", rng.IntN(courses)) }
	out := make([]projection.Event, 0, n)
	for len(out) < n {
		uid := int64(1 + rng.IntN(users))
		switch k := rng.IntN(100); {
		case k < 40:
			var name *string
			if rng.IntN(3) > 0 {
				s := names[rng.IntN(len(names))]
				name = &s
			}
			out = append(out, projection.Enrollment{
				UserID: uid, Username: userName(int(uid)), CourseID: course(), CourseName: name,
				Mode: []string{"audit", "verified"}[rng.IntN(2)], Active: rng.IntN(3) > 0,
				Created: at(), Time: at(),
			})
		case k < 85:
			out = append(out, projection.Completion{
				UserID: uid, CourseID: course(), BlockID: fmt.Sprintf("block-v1:Org+C+R+type@problem+block@%d", rng.IntN(5)),
				Created: at(), Time: at(),
			})
		case k < 93:
			var name *string
			var mobile *bool
			if rng.IntN(2) == 0 {
				s := names[rng.IntN(len(names))]
				name = &s
			}
			if rng.IntN(2) == 0 {
				b := rng.IntN(3) > 0
				mobile = &b
			}
			out = append(out, projection.CourseInfo{CourseID: course(), Name: name, MobileAvailable: mobile, Time: at()})
		case k < 98:
			out = append(out, projection.UserInfo{UserID: uid, Username: userName(int(uid)), Time: at()})
		default:
			out = append(out, projection.Retirement{UserID: uid, Time: at()})
		}
	}
	return out
}

// Shuffle returns a permutation of events with about dupFraction of them
// repeated, as at-least-once delivery and replays produce.
func Shuffle(rng *rand.Rand, events []projection.Event, dupFraction float64) []projection.Event {
	out := append([]projection.Event(nil), events...)
	for _, e := range events {
		if rng.Float64() < dupFraction {
			out = append(out, e)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
