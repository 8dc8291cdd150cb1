package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// benchUser is a typical record: 10 enrolled courses with names and
// completions.
func benchUser() projection.User {
	u := projection.User{ID: 1234567, Username: "learner1234567", UsernameTime: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	at := time.Date(2025, 6, 1, 12, 30, 0, 123456000, time.UTC)
	for i := range 10 {
		u.Courses = append(u.Courses, projection.UserCourse{
			CourseID:       fmt.Sprintf("course-v1:MITx+CS%04d+2025_T%d", i*37, 1+i%3),
			Enrollment:     projection.EnrollmentState{Active: true, Mode: "verified", Created: at, Time: at},
			LastCompletion: at.Add(time.Duration(i) * time.Hour),
			View:           projection.CourseView{Name: fmt.Sprintf("Introduction to Computer Science %d", i), HasName: true, Mobile: projection.Available},
		})
	}
	return u
}

// BenchmarkEncodeUser is the record encoding the writer does per user and
// batch.
func BenchmarkEncodeUser(b *testing.B) {
	u := benchUser()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeUser(buf, &u)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeUser is the record decoding every query (and the writer,
// per user and batch) does.
func BenchmarkDecodeUser(b *testing.B) {
	u := benchUser()
	buf := encodeUser(nil, &u)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeUser(buf); err != nil {
			b.Fatal(err)
		}
	}
}
