package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// benchCourses is a catalog of realistic course keys and names.
func benchCourses(n int) (keys, names []string) {
	for i := range n {
		keys = append(keys, fmt.Sprintf("course-v1:MITx+CS%04d+%d_T%d", i, 2023+i%4, 1+i%3))
		names = append(names, fmt.Sprintf("Introduction to Computer Science %d", i))
	}
	return keys, names
}

// benchEvents returns n events of the ingest mix (about 80% completions,
// 20% enrollments) over users ids in [1, users].
func benchEvents(rng *rand.Rand, n, users int, keys, names []string) []projection.Event {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]projection.Event, 0, n)
	for range n {
		uid := int64(1 + rng.IntN(users))
		c := rng.IntN(len(keys))
		at := base.Add(-time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Microsecond)
		if rng.IntN(5) == 0 {
			out = append(out, projection.Enrollment{UserID: uid, Username: fmt.Sprintf("learner%07d", uid), CourseID: keys[c],
				CourseName: &names[c], Mode: "verified", Active: true, Created: at, Time: at})
			continue
		}
		out = append(out, projection.Completion{UserID: uid, CourseID: keys[c],
			BlockID: fmt.Sprintf("block-v1:MITx+CS%04d+type@problem+block@%08x", c, rng.Uint32()), Created: at, Time: at})
	}
	return out
}

// BenchmarkApply is one store.Apply of a 5000-event batch (the consumer's
// default batch size) into a projection of 50k users, one transaction with
// its fsyncs: the single writer's unit of work.
func BenchmarkApply(b *testing.B) {
	s := MustOpen(b)
	rng := rand.New(rand.NewPCG(1, 2))
	keys, names := benchCourses(400)
	catalog := make([]projection.Event, len(keys))
	for i := range keys {
		catalog[i] = projection.CourseInfo{CourseID: keys[i], Name: &names[i], Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	if _, err := s.Apply(store.Batch{Events: catalog}); err != nil {
		b.Fatal(err)
	}
	const users, batch = 50_000, 5000
	for range 20 { // a populated file: most events update existing records
		if _, err := s.Apply(store.Batch{Events: benchEvents(rng, batch, users, keys, names), Messages: batch}); err != nil {
			b.Fatal(err)
		}
	}
	batches := make([][]projection.Event, 16)
	for i := range batches {
		batches[i] = benchEvents(rng, batch, users, keys, names)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.Apply(store.Batch{Events: batches[i%len(batches)], Messages: batch}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStatus is one query's read: the username index, one record of
// 10 courses decoded, the status computed; lent to a function, as the
// server reads it (StatusFunc), or copied out (Status). The usernames are
// formatted before the loop.
func BenchmarkStatus(b *testing.B) {
	s := MustOpen(b)
	rng := rand.New(rand.NewPCG(3, 4))
	keys, names := benchCourses(400)
	const users = 10_000
	var events []projection.Event
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for uid := int64(1); uid <= users; uid++ {
		for j := range 10 {
			c := (int(uid)*7 + j*31) % len(keys)
			at := base.Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
			events = append(events, projection.Enrollment{UserID: uid, Username: fmt.Sprintf("learner%07d", uid),
				CourseID: keys[c], CourseName: &names[c], Mode: "audit", Active: true, Created: at, Time: at},
				projection.Completion{UserID: uid, CourseID: keys[c], BlockID: "b", Created: at, Time: at})
		}
	}
	if _, err := s.Apply(store.Batch{Events: events}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	usernames := make([]string, users)
	for i := range usernames {
		usernames[i] = fmt.Sprintf("learner%07d", 1+i)
	}
	b.Run("lend", func(b *testing.B) {
		b.ReportAllocs()
		i, n := 0, 0
		count := func(st []projection.Status, _ projection.Freshness) error { n = len(st); return nil }
		for b.Loop() {
			if err := s.StatusFunc(ctx, projection.StatusQuery{Username: usernames[i%users], Now: base}, count); err != nil || n != 10 {
				b.Fatalf("status: %d entries, %v", n, err)
			}
			i++
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			st, _, err := s.Status(ctx, usernames[i%users], base)
			if err != nil || len(st) != 10 {
				b.Fatalf("status: %d entries, %v", len(st), err)
			}
			i++
		}
	})
}
