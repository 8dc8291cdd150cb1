package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
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
				name, got, err := statusOfRecord(rec, now, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				// Empty is empty, nil or not.
				if want := dec.Status(now, p); name != dec.Username || (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
					t.Fatalf("%d courses, %+v at %v: got %q %+v, want %q %+v", n, p, now, name, got, dec.Username, want)
				}
			}
		}
		for cut := range rec {
			_, werr := decodeUser(rec[:cut])
			_, _, gerr := statusOfRecord(rec[:cut], time.Time{}, policies[0], nil)
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("record cut at %d: error %v, decodeUser error %v", cut, gerr, werr)
			}
		}
	}
}

// BenchmarkStatusOfRecord is BenchmarkDecodeUser's record through the query
// path's decoding into the status, into a reused slice, as StatusFunc
// lends it.
func BenchmarkStatusOfRecord(b *testing.B) {
	u := benchUser()
	rec := encodeUser(nil, &u)
	now := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	p := projection.DefaultPolicy()
	var st []projection.Status
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if _, st, err = statusOfRecord(rec, now, p, st[:0]); err != nil || len(st) == 0 {
			b.Fatal(err, len(st))
		}
	}
}

// TestInstantAgreesWithTime: the query path's instants decode, compare and
// test zero as the times decoder.time builds, for encoded values of every
// kind, unnormalized nanoseconds included (which no encoder writes, but a
// damaged record may hold).
func TestInstantAgreesWithTime(t *testing.T) {
	secs := []int64{zeroUnix, zeroUnix - 1, zeroUnix + 1, -1, 0, 1, 1748736000, 1748736001, 253402300799, math.MaxInt64 / 2, math.MinInt64 / 2}
	nsecs := []uint64{0, 1, 999_999_999, 1_000_000_000, 1_500_000_000, 5_000_000_001, 1 << 63, math.MaxUint64}
	var times []time.Time
	var instants []instant
	for _, sec := range secs {
		for _, nsec := range nsecs {
			rec := binary.AppendUvarint(binary.AppendVarint(nil, sec), nsec)
			d1, d2 := decoder{b: rec}, decoder{b: rec}
			times, instants = append(times, d1.time()), append(instants, d2.instant())
			if d1.err != nil || d2.err != nil {
				t.Fatalf("%d, %d: %v, %v", sec, nsec, d1.err, d2.err)
			}
		}
	}
	for i := range times {
		if times[i].IsZero() != instants[i].isZero() {
			t.Fatalf("%v: IsZero %v, instant %+v isZero %v", times[i], times[i].IsZero(), instants[i], instants[i].isZero())
		}
		if instantOf(times[i]) != instants[i] {
			t.Fatalf("%v: instant %+v, instantOf %+v", times[i], instants[i], instantOf(times[i]))
		}
		for j := range times {
			if times[i].Before(times[j]) != instants[i].before(instants[j]) {
				t.Fatalf("%v before %v: %v, instants %v", times[i], times[j], times[i].Before(times[j]), instants[i].before(instants[j]))
			}
		}
	}
}

// TestStatusFuncLends: StatusFunc lends what Status answers, one user after
// another (the lent slice is reused), and returns fn's error as it is.
func TestStatusFuncLends(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	history := reference.RandomHistory(rand.New(rand.NewPCG(7, 7)), 60, 10, 1200, now)
	s, err := Open(filepath.Join(t.TempDir(), FileName), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(Batch{Events: history, Messages: len(history)}); err != nil {
		t.Fatal(err)
	}
	names := (&reference.Model{Events: history}).Usernames()
	nonEmpty := 0
	for _, name := range names {
		want, wantFresh, err := s.Status(ctx, name, now)
		if err != nil {
			t.Fatal(err)
		}
		var got []projection.Status
		err = s.StatusFunc(ctx, projection.StatusQuery{Username: name, Now: now}, func(lent []projection.Status, fresh projection.Freshness) error {
			if fresh != wantFresh {
				t.Errorf("%s: freshness %+v, want %+v", name, fresh, wantFresh)
			}
			got = detachStatus(lent)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 || len(want) > 0 {
			nonEmpty++
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: lent %+v, Status %+v", name, got, want)
			}
		}
	}
	if nonEmpty < len(names)/2 {
		t.Fatalf("only %d of %d users have a status", nonEmpty, len(names))
	}
	stop := errors.New("stop")
	if err := s.StatusFunc(ctx, projection.StatusQuery{Username: names[0], Now: now}, func([]projection.Status, projection.Freshness) error { return stop }); err != stop {
		t.Fatalf("StatusFunc returned %v, want fn's error", err)
	}
}
