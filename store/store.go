package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Buckets. Every key and value layout is in codec.go.
var (
	bucketUsers     = []byte("users")         // user id -> user record
	bucketUsernames = []byte("usernames")     // LowerUsername(username) -> the holder's user id, then the other carriers' (settleName)
	bucketCourses   = []byte("courses")       // course id -> course metadata
	bucketMembers   = []byte("member_blocks") // course id NUL user id>>12 -> members' low 12 bits (codec.go)
	bucketRetired   = []byte("retired")       // user id -> nothing
	bucketOffsets   = []byte("offsets")       // topic NUL partition -> next offset
	bucketMeta      = []byte("meta")          // freshness and format
	allBuckets      = [][]byte{bucketUsers, bucketUsernames, bucketCourses, bucketMembers,
		bucketRetired, bucketOffsets, bucketMeta}

	keyFormat        = []byte("format")
	keyLastEventTime = []byte("last_event_time")
	keyCommittedAt   = []byte("committed_at")
	keyApplied       = []byte("applied")
)

// formatVersion names the layout of the file. A file of another version is
// refused rather than misread.
const formatVersion = "enrollstatus/2"

// FileName is the projection's file inside a data directory.
const FileName = "projection.db"

// Options configure a Store. The zero value is not useful: start from
// DefaultOptions.
type Options struct {
	// Policy computes answers in Status.
	Policy projection.Policy
	// InitialMmapSize avoids remapping stalls (which block readers) while the
	// file grows.
	InitialMmapSize int
	// Timeout bounds waiting for the file lock held by another process.
	Timeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
	// NoSync skips the fsyncs of every commit, for a file that does not
	// serve yet and is thrown away if the process dies: a rebuild's. Rename
	// syncs the file before it takes the live one's place, and commits are
	// durable from then on.
	NoSync bool
	// Log receives what Open does beyond opening (an upgrade of an older
	// file's format); nil: slog.Default().
	Log *slog.Logger
	// upgradeTxBytes, when not zero, replaces defaultUpgradeTxBytes.
	upgradeTxBytes int
}

// DefaultOptions are the options a service uses.
func DefaultOptions() Options {
	return Options{
		Policy:          projection.DefaultPolicy(),
		InitialMmapSize: 256 << 20,
		Timeout:         5 * time.Second,
	}
}

// Store is the projection kept in one bbolt file: user records, the username
// index, course metadata and the consumer offsets they reflect. One goroutine
// writes (Apply); any number read.
type Store struct {
	db     *bolt.DB
	policy projection.Policy
	path   string
	fresh  freshPointer // see read.go
	views  views        // see view.go
}

// Open opens or creates the projection file at path.
func Open(path string, opts Options) (*Store, error) {
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	db, err := openFile(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, policy: opts.Policy, path: path}
	if opts.ReadOnly {
		err = db.View(s.checkFormat)
	} else {
		log := opts.Log
		if log == nil {
			log = slog.Default()
		}
		var upgraded bool
		if upgraded, err = upgrade(db, path, opts, log); upgraded {
			// The upgraded copy took the file's place: open it instead.
			db.Close()
			if db, err = openFile(path, opts); err != nil {
				return nil, err
			}
			s.db = db
		}
		if err == nil {
			err = db.Update(s.init)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !opts.ReadOnly {
		// A file without a stored freelist (written by an earlier build,
		// which set NoFreelistSync) has it rebuilt at open by
		// walking every page of the file into a map: about 50 bytes per
		// page, garbage once open returns. Give it back to the OS now
		// rather than keep it resident until the scavenger gets to it.
		debug.FreeOSMemory()
	}
	return s, nil
}

// openFile opens the bbolt file at path with the store's settings.
func openFile(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.Timeout,
		ReadOnly:        opts.ReadOnly,
		InitialMmapSize: opts.InitialMmapSize,
		// The free list is stored with every commit (bbolt's default), so
		// that opening a file reads it instead of walking every page of
		// the file to rebuild it: that walk read all 22.5 GB of the 10M-user
		// projection (137 s from disk, a 184 MiB transient), against 0.1 s
		// and 4 MiB with the list stored; commits measured no slower. The
		// map type allocates in constant time. NoSync only for a file
		// nothing relies on yet.
		FreelistType: bolt.FreelistMapType,
		NoSync:       opts.NoSync,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another process holds it (is a service running on this data directory?): %w", path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func (s *Store) init(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyFormat) == nil {
		return meta.Put(keyFormat, []byte(formatVersion))
	}
	return s.checkFormat(tx)
}

func (s *Store) checkFormat(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("not an enrollstatus projection (no meta bucket)")
	}
	switch v := string(meta.Get(keyFormat)); v {
	case formatVersion:
	case formatV1:
		return fmt.Errorf("projection format %q, this build reads %q: opened for writing (serve, restore) it is upgraded first", v, formatVersion)
	default:
		return fmt.Errorf("projection format %q, this build reads %q: rebuild the projection", v, formatVersion)
	}
	return nil
}

// Close closes the file. Reads in flight finish first.
func (s *Store) Close() error {
	s.beginWrite() // closes the view; none opens again
	return s.db.Close()
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Status returns the enrollments status of username at now under the store's
// policy, with the freshness of the read. An unknown user has an empty status.
// It is one read transaction: an index lookup and one record (see read.go).
func (s *Store) Status(ctx context.Context, username string, now time.Time) (st []projection.Status, fresh projection.Freshness, err error) {
	err = s.StatusFunc(ctx, projection.StatusQuery{Username: username, Now: now}, func(lent []projection.Status, f projection.Freshness) error {
		st, fresh = detachStatus(lent), f
		return nil
	})
	return st, fresh, err
}

// StatusFunc is Status that lends the answer to fn instead of copying it
// out: the statuses, and their strings, are valid only until fn returns,
// and the read transaction stays open until then (fn should be quick: it
// delays the next write). fn's error is StatusFunc's.
func (s *Store) StatusFunc(_ context.Context, q projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error {
	return s.statusRead(q, fn)
}

// UserByName returns the record of the user whose username, lower-cased as
// the LMS does, equals username's.
func (s *Store) UserByName(_ context.Context, username string) (u projection.User, fresh projection.Freshness, found bool, err error) {
	key := []byte(projection.LowerUsername(username))
	err = s.db.View(func(tx *bolt.Tx) error {
		fresh = readFreshness(tx)
		id := nameHolder(tx.Bucket(bucketUsernames).Get(key))
		if id == nil {
			return nil
		}
		v := tx.Bucket(bucketUsers).Get(id)
		if v == nil {
			return nil
		}
		var err error
		if u, err = decodeUser(v); err != nil {
			return fmt.Errorf("user %d: %w", userID(id), err)
		}
		// The index follows the record's username; a mismatch would be a
		// bug, and answering another user's data is the worst one.
		found = projection.LowerUsername(u.Username) == string(key)
		return nil
	})
	return u, fresh, found, err
}

// User returns the record of a user id.
func (s *Store) User(_ context.Context, id int64) (u projection.User, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get(userKey(id))
		if v == nil {
			return nil
		}
		found = true
		u, err = decodeUser(v)
		return err
	})
	return u, found, err
}

// Course returns what the projection knows about a course.
func (s *Store) Course(_ context.Context, courseID string) (m projection.CourseMeta, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCourses).Get([]byte(courseID))
		if v == nil {
			return nil
		}
		found = true
		m, err = decodeCourse(v)
		return err
	})
	return m, found, err
}

// Freshness returns how up to date the projection is.
func (s *Store) Freshness() (f projection.Freshness, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		f = readFreshness(tx)
		return nil
	})
	return f, err
}

func readFreshness(tx *bolt.Tx) projection.Freshness {
	meta := tx.Bucket(bucketMeta)
	var f projection.Freshness
	if v := meta.Get(keyLastEventTime); v != nil {
		f.LastEventTime = (&decoder{b: v}).time()
	}
	if v := meta.Get(keyCommittedAt); v != nil {
		f.CommittedAt = (&decoder{b: v}).time()
	}
	if v := meta.Get(keyApplied); len(v) == 8 {
		f.Applied = binary.BigEndian.Uint64(v)
	}
	return f
}

// Partition names one partition of a topic.
type Partition struct {
	Topic     string
	Partition int
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Offsets returns the next offset to read of every partition the projection
// has consumed from. Consumers resume from these, not from the broker.
func (s *Store) Offsets() (map[Partition]int64, error) {
	out := make(map[Partition]int64)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOffsets).ForEach(func(k, v []byte) error {
			p, err := parseOffsetKey(k)
			if err != nil || len(v) != 8 {
				return fmt.Errorf("%w: offset entry %q", errCorrupt, k)
			}
			out[p] = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	return out, err
}

func parseOffsetKey(k []byte) (Partition, error) {
	if len(k) < 5 || k[len(k)-5] != 0 {
		return Partition{}, errCorrupt
	}
	return Partition{
		Topic:     string(k[:len(k)-5]),
		Partition: int(binary.BigEndian.Uint32(k[len(k)-4:])),
	}, nil
}
