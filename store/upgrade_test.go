package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
)

// TestUpgradeFromV1: a file of format enrollstatus/1 (one member key per
// membership), opened for writing, holds afterwards what this format's
// Apply builds from the same events, copied in transactions small enough to
// cut every bucket and blocks between them; the copy a crash left behind is
// replaced, and none is left. Opened read-only, a v1 file is refused with
// the way out.
func TestUpgradeFromV1(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 5))
	var history []projection.Event
	for _, e := range reference.RandomHistory(rng, 40, 6, 700, now) {
		switch e := e.(type) { // users over many blocks, a few in one
		case projection.Enrollment:
			e.UserID *= 1000
			history = append(history, e)
		case projection.Completion:
			e.UserID *= 1000
			history = append(history, e)
		}
	}

	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[Partition]int64{{"enrollments", 0}: 420, {"enrollments", 1}: 17, {"completions", 0}: 9001}
	if _, err := s.Apply(Batch{Events: history, Messages: len(history), Offsets: offsets}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys[string(bucketMembers)] < 20 {
		t.Fatalf("only %d member blocks: the test needs more", want.Keys[string(bucketMembers)])
	}
	wantFresh, err := s.Freshness()
	if err != nil {
		t.Fatal(err)
	}
	entries := downgradeToV1(t, s.db)
	s.Close()
	if err := os.WriteFile(path+".upgrade", []byte("an interrupted upgrade's copy"), 0o600); err != nil {
		t.Fatal(err)
	}

	ro := DefaultOptions()
	ro.ReadOnly = true
	if _, err := Open(path, ro); err == nil || !bytes.Contains([]byte(err.Error()), []byte("opened for writing (serve, restore) it is upgraded")) {
		t.Fatalf("read-only open of a v1 file: %v, want the way out", err)
	}

	small := DefaultOptions()
	small.upgradeTxBytes = 700 // transactions that cut every bucket
	s, err = Open(path, small)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != want.Total {
		t.Fatalf("upgraded digest %v, want %v", got.Buckets, want.Buckets)
	}
	gotOffsets, err := s.Offsets()
	if err != nil || !maps.Equal(gotOffsets, offsets) {
		t.Fatalf("upgraded offsets %v, %v; want %v", gotOffsets, err, offsets)
	}
	if fresh, err := s.Freshness(); err != nil || fresh != wantFresh {
		t.Fatalf("upgraded freshness %+v, %v; want %+v", fresh, err, wantFresh)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Members != entries {
		t.Fatalf("upgraded file counts %d members, the v1 index had %d", st.Members, entries)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMembersV1) != nil {
			t.Error("the v1 members bucket is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".upgrade"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the upgrade's copy is left: %v", err)
	}
}

// downgradeToV1 rewrites the member index as enrollstatus/1 had it and
// returns the number of memberships.
func downgradeToV1(t *testing.T, db *bolt.DB) (entries int) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bucketMembersV1)
		if err != nil {
			return err
		}
		blocks := tx.Bucket(bucketMembers)
		if err := blocks.ForEach(func(k, v []byte) error {
			ids, err := appendMembers(nil, k, v)
			for _, id := range ids {
				key := append(bytes.Clone(k[:len(k)-8]), binary.BigEndian.AppendUint64(nil, uint64(id))...)
				if err := old.Put(key, nil); err != nil {
					return err
				}
				entries++
			}
			return err
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketMembers); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatV1))
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
