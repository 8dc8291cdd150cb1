package store

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
)

// TestStatusReadAgrees: the query path's in-place read answers what
// decoding the whole record (UserByName) and computing its status does,
// for every user, in any case, under every policy, and its freshness
// follows every commit.
func TestStatusReadAgrees(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 9))
		history := reference.RandomHistory(rng, 40, 10, 900, now)
		for _, p := range []projection.Policy{
			projection.DefaultPolicy(),
			{Window: 7 * 24 * time.Hour, Limit: 3, Mobile: projection.MobileStrict},
			{Window: 30 * 24 * time.Hour, Limit: 500, Mobile: projection.MobileOff},
		} {
			opts := DefaultOptions()
			opts.Policy = p
			s, err := Open(filepath.Join(t.TempDir(), FileName), opts)
			if err != nil {
				t.Fatal(err)
			}
			half := len(history) / 2
			for _, part := range [][]projection.Event{history[:half], history[half:]} {
				if _, err := s.Apply(Batch{Events: part, Messages: len(part)}); err != nil {
					t.Fatal(err)
				}
				wantFresh, err := s.Freshness()
				if err != nil {
					t.Fatal(err)
				}
				names := (&reference.Model{Events: history}).Usernames()
				for _, name := range names {
					for _, asked := range []string{name, strings.ToUpper(name), name + "x"} {
						u, _, found, err := s.UserByName(ctx, asked)
						if err != nil {
							t.Fatal(err)
						}
						var want []projection.Status
						if found {
							want = u.Status(now, p)
						}
						got, fresh, err := s.Status(ctx, asked, now)
						if err != nil {
							t.Fatal(err)
						}
						if len(got) != 0 || len(want) != 0 {
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("seed %d %q: got %+v, want %+v", seed, asked, got, want)
							}
						}
						if fresh != wantFresh {
							t.Fatalf("freshness %+v, want %+v", fresh, wantFresh)
						}
					}
				}
			}
			s.Close()
		}
	}
}

// TestDecodeUserView: decoding in place gives what decodeUser gives, for
// records of every shape, reusing the same User, and fails where it fails.
func TestDecodeUserView(t *testing.T) {
	u := benchUser()
	u.Courses[1].View = projection.CourseView{} // no name
	u.Courses[2].Enrollment = projection.EnrollmentState{}
	u.Courses[3].LastCompletion = time.Time{}
	u.Courses[4].Enrollment.Active = false
	var view projection.User
	for _, n := range []int{10, 3, 0, 10} {
		v := u
		v.Courses = u.Courses[:n]
		rec := encodeUser(nil, &v)
		want, err := decodeUser(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeUserView(rec, &view); err != nil {
			t.Fatal(err)
		}
		if len(want.Courses) == 0 {
			want.Courses = view.Courses[:0]
		}
		if !reflect.DeepEqual(view, want) {
			t.Fatalf("%d courses: view %+v, want %+v", n, view, want)
		}
		for cut := range rec {
			_, werr := decodeUser(rec[:cut])
			verr := decodeUserView(rec[:cut], &view)
			if (werr == nil) != (verr == nil) || werr != nil && werr.Error() != verr.Error() {
				t.Fatalf("record cut at %d: view error %v, decodeUser error %v", cut, verr, werr)
			}
		}
	}
}

// BenchmarkStatusRead is BenchmarkDecodeUser's record through the query
// path's in-place decoding and status.
func BenchmarkStatusRead(b *testing.B) {
	u := benchUser()
	rec := encodeUser(nil, &u)
	now := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	p := projection.DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		v := views.Get().(*projection.User)
		if err := decodeUserView(rec, v); err != nil {
			b.Fatal(err)
		}
		st := v.Status(now, p)
		detachStatus(st)
		putView(v)
	}
}
