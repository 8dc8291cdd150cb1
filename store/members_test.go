package store

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestMemberBlockAgreesWithASet: a block's value after random additions and
// removals holds exactly the set's members, ascending, and decodes back to
// their ids; blockBuilder cuts sorted entries where the course or the block
// changes.
func TestMemberBlockAgreesWithASet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const block = 77
	for range 200 {
		set := map[int64]bool{}
		var value []byte
		for range rng.IntN(300) {
			id := int64(block<<memberBlockBits | rng.IntN(64)*64 + rng.IntN(3)) // collisions and both ends
			present := rng.IntN(3) > 0
			value = setMember(value, memberLow(id), present)
			if present {
				set[id] = true
			} else {
				delete(set, id)
			}
		}
		got, err := appendMembers(nil, memberBlockKey("course-v1:A+B+C", block<<memberBlockBits), value)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(func(yield func(int64) bool) {
			for id := range set {
				if !yield(id) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("block holds %v, the set %v", got, want)
		}
	}

	var b blockBuilder
	var keys []string
	var members [][]int64
	add := func(key, value []byte, full bool) {
		if !full {
			return
		}
		ids, err := appendMembers(nil, key, value)
		if err != nil {
			t.Fatal(err)
		}
		keys, members = append(keys, string(key)), append(members, ids)
	}
	entries := []struct {
		course string
		id     int64
	}{{"a", 1}, {"a", 4095}, {"a", 4096}, {"b", 4097}, {"b", 4098}, {"b", 1 << 40}, {"b", -1}}
	for _, e := range entries {
		add(b.add([]byte(e.course), e.id))
	}
	add(b.flush())
	wantKeys := []string{string(memberBlockKey("a", 0)), string(memberBlockKey("a", 4096)),
		string(memberBlockKey("b", 4096)), string(memberBlockKey("b", 1<<40)), string(memberBlockKey("b", -1))}
	wantMembers := [][]int64{{1, 4095}, {4096}, {4097, 4098}, {1 << 40}, {-1}}
	if !slices.Equal(keys, wantKeys) || !slices.EqualFunc(members, wantMembers, slices.Equal) {
		t.Fatalf("blocks %q %v, want %q %v", keys, members, wantKeys, wantMembers)
	}
	if _, _, full := b.flush(); full {
		t.Fatal("a flushed builder flushed again")
	}
}

// TestMemberGathererAgreesWithASet: memberships gathered block by block
// while records are written, sorted and put by putMembers, make a member
// index holding exactly the memberships given, whether the sort keys are
// packed (ids in 0..1<<40) or spelled out (negative ids), and whether or
// not the users come in key order.
func TestMemberGathererAgreesWithASet(t *testing.T) {
	courses := []string{"course-v1:A+1+T", "course-v1:A+10+T", "course-v1:B+2+T", "x"}
	for _, tc := range []struct {
		name     string
		ids      func(*rand.Rand) int64
		shuffled bool
	}{
		{"dense", func(r *rand.Rand) int64 { return r.Int64N(20_000) }, false},
		{"crowded", func(r *rand.Rand) int64 { return r.Int64N(2 << memberBlockBits) }, false}, // past maxKeptLows
		{"sparse", func(r *rand.Rand) int64 { return r.Int64N(1 << 39) }, false},
		{"negative", func(r *rand.Rand) int64 { return r.Int64N(20_000) - 10_000 }, false},
		{"out of order", func(r *rand.Rand) int64 { return r.Int64N(20_000) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			want := map[membership]bool{}
			users := map[int64][]string{}
			for range 3000 {
				id := tc.ids(rng)
				for _, c := range courses {
					if rng.IntN(3) == 0 && !slices.Contains(users[id], c) {
						users[id] = append(users[id], c)
						want[membership{c, id}] = true
					}
				}
			}
			ids := slices.SortedFunc(maps.Keys(users), func(a, b int64) int { return cmp.Compare(uint64(a), uint64(b)) })
			if tc.shuffled {
				for i := range ids { // swap some neighbours, within and across blocks
					if j := i + 1 + rng.IntN(3); rng.IntN(4) == 0 && j < len(ids) {
						ids[i], ids[j] = ids[j], ids[i]
					}
				}
			}

			s, err := Open(filepath.Join(t.TempDir(), FileName), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			order := newMemberOrder(courses, slices.Min(ids), slices.Max(ids))
			if wantPacked := tc.name != "negative"; order.packed != wantPacked {
				t.Fatalf("packed %v, want %v", order.packed, wantPacked)
			}
			sorted := newSorter(s.path, 4<<10) // small: the runs spill
			defer sorted.close()
			g := newMemberGatherer(sorted, order)
			for _, id := range ids {
				for _, c := range users[id] {
					if err := g.add(c, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := g.flush(); err != nil {
				t.Fatal(err)
			}
			tx := &loadTx{db: s.db, limit: 1 << 20}
			if err := tx.begin(); err != nil {
				t.Fatal(err)
			}
			if err := tx.putMembers(sorted, order); err != nil {
				t.Fatal(err)
			}
			if err := tx.commit(); err != nil {
				t.Fatal(err)
			}

			got := map[membership]bool{}
			err = s.db.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
					members, err := appendMembers(nil, k, v)
					if !slices.IsSorted(members) || len(slices.Compact(slices.Clone(members))) != len(members) {
						t.Errorf("block %q holds %v: not ascending and distinct", k, members)
					}
					for _, id := range members {
						got[membership{string(k[:len(k)-9]), id}] = true
					}
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("the index holds %d memberships, want %d", len(got), len(want))
			}
		})
	}
}
