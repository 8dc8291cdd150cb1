package store

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The query path's read: one read transaction, the username index, one
// record decoded in place (its strings are views of bbolt's page memory,
// valid while the transaction is open), the status computed, and only the
// strings of the answer copied out, in one allocation. The freshness is
// read once per committed transaction, not once per query.

// statusRead answers Status.
func (s *Store) statusRead(username string, now time.Time) ([]projection.Status, projection.Freshness, error) {
	lower := projection.LowerUsername(username)
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, projection.Freshness{}, err
	}
	defer tx.Rollback()
	fresh := s.freshness(tx)
	// A read-only view of lower: bbolt neither keeps nor modifies the key.
	id := tx.Bucket(bucketUsernames).Get(unsafe.Slice(unsafe.StringData(lower), len(lower)))
	if id == nil {
		return nil, fresh, nil
	}
	v := tx.Bucket(bucketUsers).Get(id)
	if v == nil {
		return nil, fresh, nil
	}
	u := views.Get().(*projection.User)
	defer putView(u)
	if err := decodeUserView(v, u); err != nil {
		return nil, fresh, fmt.Errorf("user %d: %w", userID(id), err)
	}
	// The index follows the record's username; a mismatch would be a bug,
	// and answering another user's data is the worst one.
	if projection.LowerUsername(u.Username) != lower {
		return nil, fresh, nil
	}
	st := u.Status(now, s.policy)
	detachStatus(st)
	return st, fresh, nil
}

// freshCache is the freshness read at one transaction id. Every write is a
// new transaction id, so a reader at the same id reads the same meta.
type freshCache struct {
	txid  int
	fresh projection.Freshness
}

// freshness is readFreshness(tx), read once per transaction id.
func (s *Store) freshness(tx *bolt.Tx) projection.Freshness {
	id := tx.ID()
	if c := s.fresh.Load(); c != nil && c.txid == id {
		return c.fresh
	}
	f := readFreshness(tx)
	s.fresh.Store(&freshCache{txid: id, fresh: f})
	return f
}

// freshPointer is the Store's cache of the last freshness read.
type freshPointer = atomic.Pointer[freshCache]

// views recycles the decoded records of statusRead.
var views = sync.Pool{New: func() any { return new(projection.User) }}

// maxPooledCourses: a record with more courses than this is not kept.
const maxPooledCourses = 256

func putView(u *projection.User) {
	if cap(u.Courses) > maxPooledCourses {
		return
	}
	clear(u.Courses) // drop the views of page memory
	*u = projection.User{Courses: u.Courses[:0]}
	views.Put(u)
}

// decodeUserView is decodeUser, into u (reusing its Courses), with every
// string a view of b instead of a copy: u is only valid while b is.
func decodeUserView(b []byte, u *projection.User) error {
	d := decoder{b: b, s: unsafe.String(unsafe.SliceData(b), len(b))}
	if v := d.byte(); v != userRecordV1 && d.err == nil {
		return fmt.Errorf("%w: user record version %d", errCorrupt, v)
	}
	u.ID = d.varint()
	u.Username = d.string()
	u.UsernameTime = d.time()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every entry takes at least a byte
		return fmt.Errorf("%w: %d course entries in %d bytes", errCorrupt, n, len(d.b))
	}
	if uint64(cap(u.Courses)) >= n {
		u.Courses = u.Courses[:n]
		clear(u.Courses)
	} else {
		u.Courses = make([]projection.UserCourse, n)
	}
	for i := range u.Courses {
		c := &u.Courses[i]
		c.CourseID = d.string()
		flags := d.byte()
		c.View.Mobile = projection.Availability(d.byte())
		if flags&flagEnrolled != 0 {
			c.Enrollment.Mode = d.string()
			c.Enrollment.Created = d.time()
			c.Enrollment.Time = d.time()
			c.Enrollment.Active = flags&flagActive != 0
		}
		c.LastCompletion = d.time()
		if flags&flagHasName != 0 {
			c.View.Name, c.View.HasName = d.string(), true
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return d.err
}

// detachStatus copies the strings of st (views of page memory) into one
// allocation of their own.
func detachStatus(st []projection.Status) {
	n := 0
	for i := range st {
		n += len(st[i].CourseID) + len(st[i].CourseName)
	}
	var b strings.Builder
	b.Grow(n)
	for i := range st {
		b.WriteString(st[i].CourseID)
		b.WriteString(st[i].CourseName)
	}
	all, off := b.String(), 0
	for i := range st {
		c := &st[i]
		c.CourseID, off = all[off:off+len(c.CourseID)], off+len(c.CourseID)
		c.CourseName, off = all[off:off+len(c.CourseName)], off+len(c.CourseName)
	}
}
