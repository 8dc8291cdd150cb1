package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// TestQueriesDuringWrites reads while a writer grows the file from bbolt's
// smallest mapping, so that commits remap it again and again: a commit that
// remaps waits for every read transaction, the shared view's included, and
// would wait forever if the view stayed open across a write. Every answer
// must be one committed state: batch k gives each user its k-th course and
// counts 50 messages, so an answer's course count and its freshness's
// applied count must agree, and neither may go back.
func TestQueriesDuringWrites(t *testing.T) {
	opts := store.DefaultOptions()
	opts.InitialMmapSize = 0
	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const users, batches = 50, 120
	name := strings.Repeat("A long course name that makes the file grow. ", 4)

	writerDone := make(chan error, 1)
	go func() {
		for k := range batches {
			events := make([]projection.Event, 0, users)
			for uid := int64(1); uid <= users; uid++ {
				events = append(events, projection.Enrollment{UserID: uid, Username: fmt.Sprintf("learner%d", uid),
					CourseID: fmt.Sprintf("course-v1:Org+C%04d+2026", k), CourseName: &name, Mode: "audit",
					Active: true, Created: now, Time: now})
			}
			if _, err := s.Apply(store.Batch{Events: events, Messages: users}); err != nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Go(func() {
			ctx := context.Background()
			last := 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				st, fresh, err := s.Status(ctx, fmt.Sprintf("Learner%d", 1+(r*7+i)%users), now)
				if err != nil {
					errs <- err
					return
				}
				if uint64(len(st))*users != fresh.Applied {
					errs <- fmt.Errorf("%d courses with %d messages applied: not one committed state", len(st), fresh.Applied)
					return
				}
				if len(st) < last {
					errs <- fmt.Errorf("went back from %d courses to %d", last, len(st))
					return
				}
				last = len(st)
			}
		})
	}

	select {
	case err := <-writerDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the writer is stuck: a commit waits for a read transaction that does not end")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, fresh, err := s.Status(context.Background(), "learner1", now)
	if err != nil || len(st) != batches || fresh.Applied != users*batches {
		t.Fatalf("after the writes: %d courses, %d applied, %v; want %d, %d", len(st), fresh.Applied, err, batches, users*batches)
	}
}

// TestCloseWhileQuerying closes the store under running queries: Close
// waits for the shared view's readers and does not hang, and queries after
// it fail rather than read an unmapped file.
func TestCloseWhileQuerying(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := projection.Enrollment{UserID: 1, Username: "ann", CourseID: "course-v1:X+Y+Z", Mode: "audit",
		Active: true, Created: now, Time: now}
	if _, err := s.Apply(store.Batch{Events: []projection.Event{e}, Messages: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			<-start
			for range 2000 {
				st, _, err := s.Status(context.Background(), "ann", now)
				if err == nil && len(st) != 1 {
					t.Errorf("answer %+v without an error", st)
					return
				}
			}
		})
	}
	close(start)
	time.Sleep(time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close is stuck")
	}
	wg.Wait()
	if _, _, err := s.Status(context.Background(), "ann", now); err == nil {
		t.Fatal("a query after Close did not fail")
	}
}
