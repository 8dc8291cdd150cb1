package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// loadInBatches feeds events to a loader in random batches, with made-up
// offsets on two partitions, and finishes it.
func loadInBatches(t testing.TB, s *store.Store, rng *rand.Rand, events []projection.Event, opts store.LoaderOptions) store.LoadResult {
	t.Helper()
	l, err := s.NewLoader(opts)
	if err != nil {
		t.Fatal(err)
	}
	var next int64
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(50))
		next += int64(n)
		p := store.Partition{Topic: "t", Partition: rng.IntN(2)}
		if err := l.Add(store.Batch{Events: events[:n], Offsets: map[store.Partition]int64{p: next}, Messages: n}); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
	res, err := l.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLoaderMatchesApply: a loader fed a shuffled history with duplicates
// builds the very file Apply builds, batch after batch, from the same events,
// whether the events fit one in-memory run or spill into many, and whether
// the user ids fit the member index's packed sort keys or not (the last
// seeds' are beyond 2^40).
func TestLoaderMatchesApply(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 43))
		history := reference.RandomHistory(rng, 30, 8, 600, now)
		if seed >= 10 {
			history = shiftUsers(history, 1<<41)
		}
		model := &reference.Model{Events: history}

		applied := MustOpen(t)
		applyInBatches(t, applied, rng, reference.Shuffle(rng, history, 0.3))
		want, err := applied.Digest()
		if err != nil {
			t.Fatal(err)
		}

		for _, opts := range []store.LoaderOptions{
			store.DefaultLoaderOptions(),              // one run, one transaction
			{RunBytes: 1 + rng.IntN(400), TxBytes: 1}, // many runs, a transaction per user
		} {
			loaded := MustOpen(t)
			events := reference.Shuffle(rng, history, 0.3)
			res := loadInBatches(t, loaded, rng, events, opts)
			if opts.RunBytes < 1000 && res.Runs < 10 {
				t.Fatalf("seed %d: %d runs; the test wants many", seed, res.Runs)
			}
			got, err := loaded.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if got.Total != want.Total {
				diffs, _ := store.Diff(applied, loaded, 5)
				t.Fatalf("seed %d %+v: loaded digest %v differs from applied %v: %v", seed, opts, got.Buckets, want.Buckets, diffs)
			}
			checkAgainstReference(t, loaded, model, store.DefaultOptions().Policy)

			f, err := loaded.Freshness()
			if err != nil {
				t.Fatal(err)
			}
			if f.Applied != uint64(len(events)) {
				t.Fatalf("applied %d, want %d", f.Applied, len(events))
			}
			offs, err := loaded.Offsets()
			if err != nil {
				t.Fatal(err)
			}
			if offs[store.Partition{Topic: "t", Partition: 0}] == 0 && offs[store.Partition{Topic: "t", Partition: 1}] == 0 {
				t.Fatalf("offsets not stored: %v", offs)
			}
		}
	}
}

func TestLoaderNeedsAnEmptyStore(t *testing.T) {
	if _, err := MustOpen(t).NewLoader(store.DefaultLoaderOptions()); err != nil {
		t.Fatalf("NewLoader on an empty store: %v", err)
	}
	p := store.Partition{Topic: "t", Partition: 0}
	for what, b := range map[string]store.Batch{
		"offsets":    {Offsets: map[store.Partition]int64{p: 3}, Messages: 3},
		"a user":     {Events: []projection.Event{projection.UserInfo{UserID: 1, Username: "u", Time: now}}},
		"retirement": {Events: []projection.Event{projection.Retirement{UserID: 1, Time: now}}},
	} {
		s := MustOpen(t)
		if _, err := s.Apply(b); err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewLoader(store.DefaultLoaderOptions()); !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("NewLoader on a store with %s: %v, want ErrNotEmpty", what, err)
		}
	}
}

// TestLoaderLeavesNoFiles: spilled runs are unlinked when created, so a
// loader that finishes, or is abandoned, leaves only the store's file.
func TestLoaderLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(filepath.Join(dir, store.FileName), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	history := reference.RandomHistory(rng, 10, 3, 200, now)
	l, err := s.NewLoader(store.LoaderOptions{RunBytes: 100, TxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(history); i += 20 {
		if err := l.Add(store.Batch{Events: history[i:min(i+20, len(history))], Messages: 20}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("while loading, the directory holds %v, want only %s", entries, store.FileName)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoaderUsernameClaims: when users claim the same (lower-cased) name,
// the index gives it to the latest claim, and on a tie to the user Apply
// reaches first in key order, as Apply settles it; names may hold NUL bytes.
func TestLoaderUsernameClaims(t *testing.T) {
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	info := func(id int64, name string, h int) projection.Event {
		return projection.UserInfo{UserID: id, Username: name, Time: at(h)}
	}
	history := []projection.Event{
		info(1, "Same", 1), info(2, "same", 2), // 2 claims it later
		info(3, "Tie", 5), info(4, "tie", 5), // a tie: 3, reached first
		info(5, "a\x00b", 1), info(6, "a", 1), info(7, "a\x00", 1),
		info(8, "gone", 9), info(9, "gone", 1), projection.Retirement{UserID: 8, Time: at(10)},
	}
	applied := MustOpen(t)
	for _, e := range history { // in user order, one batch each
		if _, err := applied.Apply(store.Batch{Events: []projection.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	loaded := MustOpen(t)
	rng := rand.New(rand.NewPCG(3, 3))
	loadInBatches(t, loaded, rng, reference.Shuffle(rng, history, 0), store.LoaderOptions{RunBytes: 64, TxBytes: 1})
	for name, want := range map[string]int64{"same": 2, "tie": 3, "a\x00b": 5, "a": 6, "a\x00": 7} {
		u, _, found, err := loaded.UserByName(context.Background(), name)
		if err != nil || !found || u.ID != want {
			t.Errorf("%q: user %d found=%v err=%v, want user %d", name, u.ID, found, err, want)
		}
	}
	if u, _, found, _ := loaded.UserByName(context.Background(), "gone"); !found || u.ID != 9 {
		t.Errorf(`"gone": user %d found=%v, want user 9, its other carrier`, u.ID, found)
	}
	diffs, err := store.Diff(applied, loaded, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Fatalf("differences from Apply: %v", diffs)
	}
}

// TestUsernameIndexIsOrderIndependent: two records carry one name when a
// rename was never seen; whatever the order the claims, renames and
// retirements arrive in, one by one or in one batch, Apply and the loader
// give the same file, and the name goes to the latest claim among the
// records that still carry it.
func TestUsernameIndexIsOrderIndependent(t *testing.T) {
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	enroll := func(id int64, name, course string, h int) projection.Event {
		return projection.Enrollment{UserID: id, Username: name, CourseID: course, Active: true, Mode: "audit",
			Created: at(h), Time: at(h)}
	}
	info := func(id int64, name string, h int) projection.Event {
		return projection.UserInfo{UserID: id, Username: name, Time: at(h)}
	}
	for _, tc := range []struct {
		name    string
		history []projection.Event
		holder  map[string]int64 // 0: nobody
	}{
		{"the later claimant renames away", []projection.Event{
			enroll(1, "ncase", "course-v1:A+X+1", 1), enroll(2, "NCase", "course-v1:A+Y+1", 2), info(2, "mcase", 3),
		}, map[string]int64{"ncase": 1, "mcase": 2}},
		{"the later claimant retires", []projection.Event{
			enroll(1, "shared", "course-v1:A+X+1", 1), enroll(2, "shared", "course-v1:A+Y+1", 2),
			projection.Retirement{UserID: 2, Time: at(3)},
		}, map[string]int64{"shared": 1}},
		{"the earlier claimant claims again, later", []projection.Event{
			enroll(1, "again", "course-v1:A+X+1", 1), enroll(2, "again", "course-v1:A+Y+1", 2), info(1, "again", 3),
		}, map[string]int64{"again": 1}},
		{"three carriers, the holder leaves", []projection.Event{
			info(1, "three", 1), info(2, "three", 3), info(3, "three", 2), info(2, "other", 4),
		}, map[string]int64{"three": 3, "other": 2}},
		{"a swap", []projection.Event{
			info(1, "a", 1), info(2, "b", 1), info(1, "tmp", 2), info(2, "a", 3), info(1, "b", 4),
		}, map[string]int64{"a": 2, "b": 1, "tmp": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want store.Digest
			check := func(how string, s *store.Store) {
				t.Helper()
				for name, id := range tc.holder {
					u, _, found, err := s.UserByName(context.Background(), name)
					if err != nil || found != (id != 0) || found && u.ID != id {
						t.Fatalf("%s: %q is user %d (found=%v, err=%v), want user %d", how, name, u.ID, found, err, id)
					}
				}
				d, err := s.Digest()
				if err != nil {
					t.Fatal(err)
				}
				if want.Total == "" {
					want = d
				} else if d.Total != want.Total {
					t.Fatalf("%s: digest %v, want %v", how, d.Buckets, want.Buckets)
				}
			}
			permute(tc.history, func(events []projection.Event) {
				s := MustOpen(t)
				for _, e := range events {
					if _, err := s.Apply(store.Batch{Events: []projection.Event{e}, Messages: 1}); err != nil {
						t.Fatal(err)
					}
				}
				check(fmt.Sprintf("one by one, %v", events), s)
				s = MustOpen(t)
				if _, err := s.Apply(store.Batch{Events: events, Messages: len(events)}); err != nil {
					t.Fatal(err)
				}
				check(fmt.Sprintf("in one batch, %v", events), s)
			})
			s := MustOpen(t)
			loadInBatches(t, s, rand.New(rand.NewPCG(1, 1)), tc.history, store.LoaderOptions{RunBytes: 64, TxBytes: 1})
			check("loaded", s)
		})
	}
}

// permute calls fn with every order of events.
func permute(events []projection.Event, fn func([]projection.Event)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(events) {
			fn(slices.Clone(events))
			return
		}
		for i := k; i < len(events); i++ {
			events[k], events[i] = events[i], events[k]
			rec(k + 1)
			events[k], events[i] = events[i], events[k]
		}
	}
	rec(0)
}

// shiftUsers returns the history with every user id moved by d.
func shiftUsers(history []projection.Event, d int64) []projection.Event {
	return mapUsers(history, func(id int64) int64 { return id + d })
}

// mapUsers returns the history with every user id replaced by f's.
func mapUsers(history []projection.Event, f func(int64) int64) []projection.Event {
	out := make([]projection.Event, len(history))
	for i, e := range history {
		switch e := e.(type) {
		case projection.Enrollment:
			e.UserID = f(e.UserID)
			out[i] = e
		case projection.Completion:
			e.UserID = f(e.UserID)
			out[i] = e
		case projection.UserInfo:
			e.UserID = f(e.UserID)
			out[i] = e
		case projection.Retirement:
			e.UserID = f(e.UserID)
			out[i] = e
		default:
			out[i] = e
		}
	}
	return out
}

// TestMergeLoaderMatchesApply: a projection that Apply built from the first
// part of a history, merged by a merge loader with the rest, is the file
// Apply builds from the whole history, batch after batch; the base is left
// as it was. The cut falls anywhere, so the rest may rename courses whose
// members it never mentions, retire users of the base, or be empty; with
// 300 users (odd seeds) most users of the base have no event in the rest.
func TestMergeLoaderMatchesApply(t *testing.T) {
	p := store.Partition{Topic: "t", Partition: 0}
	for seed := range uint64(16) {
		rng := rand.New(rand.NewPCG(seed, 44))
		history := reference.RandomHistory(rng, []int{30, 300}[seed%2], 8, 600, now)
		if seed >= 14 {
			history = shiftUsers(history, 1<<41)
		}
		events := reference.Shuffle(rng, history, 0.3)
		cut := rng.IntN(len(events) + 1)
		if seed == 0 {
			cut = len(events) // nothing to merge
		}

		applied := MustOpen(t)
		applyInBatches(t, applied, rng, events)
		want, err := applied.Digest()
		if err != nil {
			t.Fatal(err)
		}

		for _, opts := range []store.LoaderOptions{
			store.DefaultLoaderOptions(),
			{RunBytes: 1 + rng.IntN(400), TxBytes: 1},
		} {
			base := MustOpen(t)
			applyInBatches(t, base, rng, events[:cut])
			if _, err := base.Apply(store.Batch{Offsets: map[store.Partition]int64{p: int64(cut)}}); err != nil {
				t.Fatal(err)
			}
			baseDigest, err := base.Digest()
			if err != nil {
				t.Fatal(err)
			}

			merged := MustOpen(t)
			l, err := merged.NewMergeLoader(base, opts)
			if err != nil {
				t.Fatal(err)
			}
			if pos := l.Positions(); pos[p] != int64(cut) || len(pos) != 1 {
				t.Fatalf("positions %v, want %v: %d", pos, p, cut)
			}
			for next := cut; next < len(events); {
				n := min(len(events)-next, 1+rng.IntN(50))
				next += n
				if err := l.Add(store.Batch{Events: events[next-n : next], Offsets: map[store.Partition]int64{p: int64(next)}, Messages: n}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Finish(); err != nil {
				t.Fatal(err)
			}

			got, err := merged.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if got.Total != want.Total {
				diffs, _ := store.Diff(applied, merged, 5)
				t.Fatalf("seed %d %+v, cut %d of %d: merged digest %v differs from applied %v: %v",
					seed, opts, cut, len(events), got.Buckets, want.Buckets, diffs)
			}
			checkAgainstReference(t, merged, &reference.Model{Events: history}, store.DefaultOptions().Policy)
			if after, err := base.Digest(); err != nil || after.Total != baseDigest.Total {
				t.Fatalf("seed %d: the base changed (%v)", seed, err)
			}
			f, err := merged.Freshness()
			if err != nil {
				t.Fatal(err)
			}
			if f.Applied != uint64(len(events)) {
				t.Fatalf("seed %d: applied %d, want %d", seed, f.Applied, len(events))
			}
			if offs, err := merged.Offsets(); err != nil || offs[p] != int64(len(events)) {
				t.Fatalf("seed %d: offsets %v (%v), want %d", seed, offs, err, len(events))
			}
		}
	}
}

func TestMergeLoaderNeedsAnEmptyStore(t *testing.T) {
	s := MustOpen(t)
	if _, err := s.Apply(store.Batch{Events: []projection.Event{projection.UserInfo{UserID: 1, Username: "u", Time: now}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewMergeLoader(MustOpen(t), store.DefaultLoaderOptions()); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("NewMergeLoader into a store with a user: %v, want ErrNotEmpty", err)
	}
}

// TestLoadersFillAFullRecordAsApply: a user enrolled in more courses than a
// record keeps (projection.MaxCoursesPerUser), whose loads cannot insert
// the new entries at once and create them event by event, evicting: a load
// and a merge build the file Apply builds, the course names (views) of the
// entries created one by one included.
func TestLoadersFillAFullRecordAsApply(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000-entry records")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var events []projection.Event
	for i, c := range rng.Perm(projection.MaxCoursesPerUser + 200)[:projection.MaxCoursesPerUser+40] {
		course := fmt.Sprintf("course-v1:X+C%05d+T", c)
		name := "Course " + course
		events = append(events, projection.Enrollment{UserID: 9, Username: "full", CourseID: course, CourseName: &name,
			Mode: "audit", Active: true, Created: now.Add(-time.Duration(i) * time.Minute), Time: now.Add(-time.Duration(i) * time.Minute)})
		if rng.IntN(4) == 0 {
			events = append(events, projection.Completion{UserID: 9, CourseID: course, BlockID: "b", Created: now, Time: now})
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	apply := func(s *store.Store, events []projection.Event) {
		for i := 0; i < len(events); i += 1000 {
			if _, err := s.Apply(store.Batch{Events: events[i:min(i+1000, len(events))], Messages: min(1000, len(events)-i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	applied := MustOpen(t)
	apply(applied, events)
	want, err := applied.Digest()
	if err != nil {
		t.Fatal(err)
	}

	loaded := MustOpen(t)
	loadInBatches(t, loaded, rng, events, store.DefaultLoaderOptions())
	base := MustOpen(t)
	cut := len(events) / 2
	apply(base, events[:cut])
	merged := MustOpen(t)
	l, err := merged.NewMergeLoader(base, store.DefaultLoaderOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(store.Batch{Events: events[cut:], Messages: len(events) - cut}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]*store.Store{"loaded": loaded, "merged": merged} {
		got, err := s.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got.Buckets["users"] != want.Buckets["users"] || got.Buckets["member_blocks"] != want.Buckets["member_blocks"] ||
			got.Buckets["usernames"] != want.Buckets["usernames"] || got.Keys["users"] != 1 {
			diffs, _ := store.Diff(applied, s, 3)
			t.Fatalf("%s: digest %v differs from applied %v: %v", what, got.Buckets, want.Buckets, diffs)
		}
	}
}
