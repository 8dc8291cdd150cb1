package store_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// MustOpen opens a store in a fresh temporary directory, closed at cleanup.
func MustOpen(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// applyInBatches applies events split at random points into batches.
func applyInBatches(t testing.TB, s *store.Store, rng *rand.Rand, events []projection.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(50))
		if _, err := s.Apply(store.Batch{Events: events[:n], Messages: n}); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

// checkAgainstReference compares every user's answer with the reference
// model's, through the username index as a query would go.
func checkAgainstReference(t testing.TB, s *store.Store, model *reference.Model, policy projection.Policy) {
	t.Helper()
	ctx := context.Background()
	names := model.Usernames()
	for id, name := range names {
		want := model.Status(id, now, policy)
		got, _, err := s.Status(ctx, name, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("user %d %q: got %d entries %+v, want %d %+v", id, name, len(got), got, len(want), want)
		}
		for i := range want {
			g, w := got[i], want[i]
			nameOK := (w.CourseName == nil && !g.HasCourseName) ||
				(w.CourseName != nil && g.HasCourseName && g.CourseName == *w.CourseName)
			if g.CourseID != w.CourseID || g.RecentlyActive != w.RecentlyActive || !nameOK {
				t.Fatalf("user %d entry %d: got %+v, want %+v (name %v)", id, i, g, w, w.CourseName)
			}
		}
	}
}

// TestConvergence is the property the whole design rests on: a random event
// log, shuffled, with duplicates, applied in any batch split, gives the same
// projection file content and the same answers as the reference model.
func TestConvergence(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		history := reference.RandomHistory(rng, 30, 8, 600, now)
		model := &reference.Model{Events: history}

		var digests []store.Digest
		for run := range 3 {
			s := MustOpen(t)
			applyInBatches(t, s, rng, reference.Shuffle(rng, history, 0.3))
			if run == 0 {
				checkAgainstReference(t, s, model, store.DefaultOptions().Policy)
			}
			d, err := s.Digest()
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, d)
			if run > 0 && d.Total != digests[0].Total {
				t.Fatalf("seed %d run %d: digest %v differs from run 0 %v", seed, run, d.Buckets, digests[0].Buckets)
			}
		}
	}
}

// TestMembersAcrossBlocks spreads the users over the member index's blocks
// (a few share one, most have their own, one id is negative): the answers
// still follow every course change, retirement and eviction, the file
// converges whatever the order, and Stats counts every membership.
func TestMembersAcrossBlocks(t *testing.T) {
	spread := func(id int64) int64 {
		if id == 7 {
			return -3
		}
		return id*1500 + id%3
	}
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 99))
		history := mapUsers(reference.RandomHistory(rng, 40, 6, 900, now), spread)
		model := &reference.Model{Events: history}
		var first store.Digest
		for run := range 2 {
			s := MustOpen(t)
			applyInBatches(t, s, rng, reference.Shuffle(rng, history, 0.3))
			checkAgainstReference(t, s, model, store.DefaultOptions().Policy)
			d, err := s.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if run == 0 {
				first = d
			} else if d.Total != first.Total {
				t.Fatalf("seed %d: digest %v differs from the first order's %v", seed, d.Buckets, first.Buckets)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			memberships, seen := 0, map[int64]bool{}
			for _, e := range history {
				id, ok := projection.UserOf(e)
				if !ok || seen[id] {
					continue
				}
				seen[id] = true
				u, found, err := s.User(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if found {
					memberships += len(u.Courses)
				}
			}
			if st.Members != memberships || memberships == 0 {
				t.Fatalf("seed %d: Stats counts %d members, the records hold %d", seed, st.Members, memberships)
			}
		}
	}
}

func TestPoliciesAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	history := reference.RandomHistory(rng, 20, 12, 800, now)
	model := &reference.Model{Events: history}
	for _, p := range []projection.Policy{
		{Window: 30 * 24 * time.Hour, Limit: 500, Mobile: projection.MobileStrict},
		{Window: 30 * 24 * time.Hour, Limit: 3, Mobile: projection.MobileKnown},
		{Window: 7 * 24 * time.Hour, Limit: 5, Mobile: projection.MobileOff},
	} {
		opts := store.DefaultOptions()
		opts.Policy = p
		s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), opts)
		if err != nil {
			t.Fatal(err)
		}
		applyInBatches(t, s, rng, history)
		checkAgainstReference(t, s, model, p)
		s.Close()
	}
}

func TestDiffNamesTheDifference(t *testing.T) {
	a, b := MustOpen(t), MustOpen(t)
	e := projection.Enrollment{UserID: 9, Username: "zed", CourseID: "course-v1:X+Y+Z", Mode: "audit",
		Active: true, Created: now, Time: now}
	for _, s := range []*store.Store{a, b} {
		if _, err := s.Apply(store.Batch{Events: []projection.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := store.Diff(a, b, 10); len(d) != 0 {
		t.Fatalf("identical stores differ: %v", d)
	}
	e.Active = false
	e.Time = now.Add(time.Second)
	if _, err := b.Apply(store.Batch{Events: []projection.Event{e}}); err != nil {
		t.Fatal(err)
	}
	d, err := store.Diff(a, b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0].Bucket != "users" || d[0].Key != "user 9" || d[0].Reason != "values differ" {
		t.Fatalf("diff = %v, want one difference in users/user 9", d)
	}
}

// TestStaffSeeEveryCourse: the LMS's mobile filter lets global staff see
// courses that are not available on mobile (is_mobile_available_for_user),
// under every filter setting; the limit still comes first.
func TestStaffSeeEveryCourse(t *testing.T) {
	no, yes := false, true
	events := []projection.Event{
		projection.CourseInfo{CourseID: "course-v1:A+Desk+1", MobileAvailable: &no, Time: now},
		projection.CourseInfo{CourseID: "course-v1:A+Mobile+1", MobileAvailable: &yes, Time: now},
	}
	for _, c := range []string{"course-v1:A+Desk+1", "course-v1:A+Mobile+1", "course-v1:A+Unknown+1"} {
		events = append(events, projection.Enrollment{UserID: 1, Username: "staffer", CourseID: c,
			Mode: "audit", Active: true, Created: now, Time: now})
	}
	for _, tc := range []struct {
		filter       projection.MobileFilter
		learner, all int
	}{
		{projection.MobileKnown, 2, 3},
		{projection.MobileStrict, 1, 3},
		{projection.MobileOff, 3, 3},
	} {
		opts := store.DefaultOptions()
		opts.Policy.Mobile = tc.filter
		s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(store.Batch{Events: events}); err != nil {
			t.Fatal(err)
		}
		for _, staff := range []bool{false, true} {
			var n int
			q := projection.StatusQuery{Username: "Staffer", Now: now, Staff: staff}
			if err := s.StatusFunc(context.Background(), q, func(st []projection.Status, _ projection.Freshness) error {
				n = len(st)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: tc.learner, true: tc.all}[staff]; n != want {
				t.Errorf("filter %s, staff %v: %d courses, want %d", tc.filter, staff, n, want)
			}
		}
		s.Close()
	}
}

func TestRetirementErases(t *testing.T) {
	s := MustOpen(t)
	ctx := context.Background()
	enroll := projection.Enrollment{UserID: 5, Username: "Secret_Name", CourseID: "course-v1:A+B+C",
		Mode: "audit", Active: true, Created: now, Time: now}
	if _, err := s.Apply(store.Batch{Events: []projection.Event{enroll}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Status(ctx, "secret_name", now); len(got) != 1 {
		t.Fatalf("before retirement: %d entries, want 1", len(got))
	}
	if _, err := s.Apply(store.Batch{Events: []projection.Event{projection.Retirement{UserID: 5, Time: now}}}); err != nil {
		t.Fatal(err)
	}
	// A replayed enrollment after the retirement stays dropped.
	res, err := s.Apply(store.Batch{Events: []projection.Event{enroll}})
	if err != nil {
		t.Fatal(err)
	}
	if res.DroppedRetired != 1 {
		t.Fatalf("dropped %d events of the retired user, want 1", res.DroppedRetired)
	}
	if got, _, _ := s.Status(ctx, "secret_name", now); len(got) != 0 {
		t.Fatalf("after retirement: %d entries, want 0", len(got))
	}
	if _, found, _ := s.User(ctx, 5); found {
		t.Fatal("retired user's record still exists")
	}
}

func TestRenameFansOutAndIndexFollows(t *testing.T) {
	s := MustOpen(t)
	ctx := context.Background()
	name := "Old Name"
	var events []projection.Event
	for id := int64(1); id <= 50; id++ {
		events = append(events, projection.Enrollment{UserID: id, Username: "u" + string(rune('a'+id%26)) + string(rune('0'+id/26)),
			CourseID: "course-v1:R+N+1", CourseName: &name, Mode: "audit", Active: true, Created: now, Time: now})
	}
	if _, err := s.Apply(store.Batch{Events: events}); err != nil {
		t.Fatal(err)
	}
	newName := "New Name"
	res, err := s.Apply(store.Batch{Events: []projection.Event{
		projection.CourseInfo{CourseID: "course-v1:R+N+1", Name: &newName, Time: now.Add(time.Hour)},
		projection.UserInfo{UserID: 1, Username: "Renamed", Time: now.Add(time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fanout != 50 {
		t.Fatalf("fan-out rewrote %d records, want 50", res.Fanout)
	}
	got, _, err := s.Status(ctx, "RENAMED", now)
	if err != nil || len(got) != 1 || got[0].CourseName != "New Name" {
		t.Fatalf("renamed user answers %+v, %v; want the new course name", got, err)
	}
	if got, _, _ := s.Status(ctx, "ub0", now); len(got) != 0 {
		t.Fatalf("old username still answers %+v", got)
	}
}

func TestOffsetsOnlyMoveForward(t *testing.T) {
	s := MustOpen(t)
	p := store.Partition{Topic: "t", Partition: 3}
	for _, next := range []int64{10, 5, 12} {
		if _, err := s.Apply(store.Batch{Offsets: map[store.Partition]int64{p: next}}); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := s.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	if offs[p] != 12 {
		t.Fatalf("offset %d, want 12", offs[p])
	}
}

// TestFreshnessNotAheadOfTheClock: an event time ahead of the clock (a
// producer's clock ahead) counts as the commit's time, by Apply and by a
// load, so that the freshness headers never claim a projection fresher than
// it can be; an earlier event time is kept as it is.
func TestFreshnessNotAheadOfTheClock(t *testing.T) {
	past := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	enrollment := func(at time.Time) projection.Event {
		return projection.Enrollment{UserID: 1, Username: "u", CourseID: "course-v1:A+B+C", Mode: "audit", Active: true, Created: past, Time: at}
	}
	check := func(t *testing.T, s *store.Store, want func(projection.Freshness) time.Time) {
		t.Helper()
		f, err := s.Freshness()
		if err != nil {
			t.Fatal(err)
		}
		if got := want(f); f.LastEventTime.IsZero() || !f.LastEventTime.Equal(got) {
			t.Fatalf("last event time %v, want %v (committed at %v)", f.LastEventTime, got, f.CommittedAt)
		}
	}
	atCommit := func(f projection.Freshness) time.Time { return f.CommittedAt }
	t.Run("apply", func(t *testing.T) {
		s := MustOpen(t)
		if _, err := s.Apply(store.Batch{Events: []projection.Event{enrollment(past)}, Messages: 1}); err != nil {
			t.Fatal(err)
		}
		check(t, s, func(projection.Freshness) time.Time { return past })
		if _, err := s.Apply(store.Batch{Events: []projection.Event{enrollment(time.Now().Add(48 * time.Hour))}, Messages: 1}); err != nil {
			t.Fatal(err)
		}
		check(t, s, atCommit)
	})
	t.Run("load", func(t *testing.T) {
		s := MustOpen(t)
		l, err := s.NewLoader(store.DefaultLoaderOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Add(store.Batch{Events: []projection.Event{enrollment(time.Now().Add(48 * time.Hour))}, Messages: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(); err != nil {
			t.Fatal(err)
		}
		check(t, s, atCommit)
	})
}
