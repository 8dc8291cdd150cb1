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

// TestStatusOfRecord: decoding a record straight into its status gives
// what decodeUser then User.Status give, for records of every shape, under
// every policy, and fails where decodeUser fails, with the same error.
func TestStatusOfRecord(t *testing.T) {
	u := benchUser()
	u.Courses[1].View = projection.CourseView{} // no name
	u.Courses[2].Enrollment = projection.EnrollmentState{}
	u.Courses[3].LastCompletion = time.Time{}
	u.Courses[4].Enrollment.Active = false
	u.Courses[5].View.Mobile = projection.Unavailable
	u.Courses[6].View.Mobile = projection.AvailabilityUnknown
	u.Courses[7].Enrollment.Created = time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	u.Courses[8].LastCompletion = time.Date(2025, 5, 2, 12, 30, 0, 123456000, time.UTC)
	policies := []projection.Policy{
		projection.DefaultPolicy(),
		{Window: 30 * 24 * time.Hour, Limit: 3, Mobile: projection.MobileStrict},
		{Window: 7 * 24 * time.Hour, Limit: 0, Mobile: projection.MobileOff},
		{Window: 30 * 24 * time.Hour, Limit: 500, Mobile: projection.MobileOff},
	}
	for _, n := range []int{10, 3, 0} {
		v := u
		v.Courses = u.Courses[:n]
		rec := encodeUser(nil, &v)
		dec, err := decodeUser(rec)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range policies {
			for _, now := range []time.Time{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 2, 12, 30, 0, 123456000, time.UTC),
				time.Date(2025, 6, 19, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} {
				name, got, err := statusOfRecord(rec, now, p)
				if err != nil {
					t.Fatal(err)
				}
				if want := dec.Status(now, p); name != dec.Username || !reflect.DeepEqual(got, want) {
					t.Fatalf("%d courses, %+v at %v: got %q %+v, want %q %+v", n, p, now, name, got, dec.Username, want)
				}
			}
		}
		for cut := range rec {
			_, werr := decodeUser(rec[:cut])
			_, _, gerr := statusOfRecord(rec[:cut], time.Time{}, policies[0])
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("record cut at %d: error %v, decodeUser error %v", cut, gerr, werr)
			}
		}
	}
}

// BenchmarkStatusOfRecord is BenchmarkDecodeUser's record through the query
// path's decoding into the status, strings copied out.
func BenchmarkStatusOfRecord(b *testing.B) {
	u := benchUser()
	rec := encodeUser(nil, &u)
	now := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	p := projection.DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		_, st, err := statusOfRecord(rec, now, p)
		if err != nil {
			b.Fatal(err)
		}
		detachStatus(st)
	}
}
