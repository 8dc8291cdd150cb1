package store

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
)

// TestUpgradeFromV1: a file of format enrollstatus/1 (one member key per
// membership), opened for writing, holds afterwards what this format's
// Apply builds from the same events, in transactions small enough to cut
// blocks between them; a member index left by an interrupted upgrade is
// dropped first. Opened read-only, it is refused with the way out.
func TestUpgradeFromV1(t *testing.T) {
	defer func(n int) { upgradeTxEntries = n }(upgradeTxEntries)
	upgradeTxEntries = 7
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
	if _, err := s.Apply(Batch{Events: history, Messages: len(history)}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys[string(bucketMembers)] < 20 {
		t.Fatalf("only %d member blocks: the test needs more", want.Keys[string(bucketMembers)])
	}
	entries := downgradeToV1(t, s.db)
	s.Close()

	ro := DefaultOptions()
	ro.ReadOnly = true
	if _, err := Open(path, ro); err == nil || !bytes.Contains([]byte(err.Error()), []byte("upgraded in place")) {
		t.Fatalf("read-only open of a v1 file: %v, want the way out", err)
	}

	s, err = Open(path, DefaultOptions())
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
}

// downgradeToV1 rewrites the member index as enrollstatus/1 had it, leaves
// a stray block behind as an interrupted upgrade would, and returns the
// number of memberships.
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
		if err := blocks.Put([]byte("stray\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte{0, 1}); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatV1))
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
