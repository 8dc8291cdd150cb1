package store

import (
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Stats describes a projection file.
type Stats struct {
	Users     int   `json:"users"`
	Usernames int   `json:"usernames"`
	Courses   int   `json:"courses"`
	Members   int   `json:"members"`
	Retired   int   `json:"retired"`
	FileBytes int64 `json:"file_bytes"`
	// FreePages are pages bbolt can reuse; a file with many is worth
	// compacting when disk matters.
	FreePages int `json:"free_pages"`
}

// Stats counts the projection's records. It reads every bucket's statistics,
// not every record, and the member index's blocks.
func (s *Store) Stats() (st Stats, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		count := func(name []byte) int { return tx.Bucket(name).Stats().KeyN }
		st.Users = count(bucketUsers)
		st.Usernames = count(bucketUsernames)
		st.Courses = count(bucketCourses)
		// A member block's value holds two bytes a member.
		if err := tx.Bucket(bucketMembers).ForEach(func(_, v []byte) error {
			st.Members += len(v) / 2
			return nil
		}); err != nil {
			return err
		}
		st.Retired = count(bucketRetired)
		st.FileBytes = tx.Size()
		return nil
	})
	st.FreePages = s.db.Stats().FreePageN
	return st, err
}

// Snapshot writes a consistent copy of the whole file, offsets included, to w
// while writes go on (bbolt's Tx.WriteTo in a read transaction). A store
// opened on the copy resumes consuming from the snapshot's offsets.
// size, when not nil, is told the copy's size before it is written.
func (s *Store) Snapshot(w io.Writer, size func(int64)) (n int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Compact copies the projection at src into a new file at dst, which is
// smaller when src has free pages (bbolt files never shrink by themselves).
// src must not be open by a running service.
func Compact(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("compact: %s exists; choose a new file", dst)
	}
	in, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultOptions().Timeout})
	if err != nil {
		return fmt.Errorf("compact: open %s (is a service still running on it?): %w", src, err)
	}
	defer in.Close()
	out, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		return fmt.Errorf("compact: create %s: %w", dst, err)
	}
	if err := bolt.Compact(out, in, 64<<20); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("compact: %w", err)
	}
	return out.Close()
}

// Rename moves the open projection file to path (replacing what is there)
// and keeps using it: a rebuilt file takes the live one's place atomically.
func (s *Store) Rename(path string) error {
	if s.db.NoSync {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("sync projection: %w", err)
		}
		s.db.NoSync = false
	}
	if err := os.Rename(s.path, path); err != nil {
		return fmt.Errorf("rename projection: %w", err)
	}
	s.path = path
	return nil
}

// CompactInto copies the projection into a new file at dst while the store
// stays open (a read transaction gives a consistent view; the caller makes
// sure nothing writes meanwhile if the copy must be complete), and opens it.
func (s *Store) CompactInto(dst string, opts Options) (*Store, error) {
	if _, err := os.Stat(dst); err == nil {
		return nil, fmt.Errorf("compact: %s exists", dst)
	}
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("compact: create %s: %w", dst, err)
	}
	if err := bolt.Compact(out, s.db, 64<<20); err != nil {
		out.Close()
		os.Remove(dst)
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return nil, err
	}
	return Open(dst, opts)
}
