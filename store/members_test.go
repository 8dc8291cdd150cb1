package store

import (
	"math/rand/v2"
	"slices"
	"testing"
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
