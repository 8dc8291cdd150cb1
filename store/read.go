package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The query path's read: one read transaction (the view shared by the
// queries between two writes, see view.go), the username index, one
// record decoded in place (strings are views of bbolt's page memory, valid
// while the transaction is open) straight into the status, in a slice from
// a pool. StatusFunc lends that to its caller while the transaction is
// open; Status copies the answer's strings out, in one allocation. The
// freshness is read once per committed transaction, not once per query.

// statusRead calls fn with the status q asks for, from the shared view
// when there is one.
func (s *Store) statusRead(q projection.StatusQuery, fn func([]projection.Status, projection.Freshness) error) error {
	lower := projection.LowerUsername(q.Username)
	p := s.policy.For(q)
	// A read-only view of lower: bbolt neither keeps nor modifies the key.
	key := unsafe.Slice(unsafe.StringData(lower), len(lower))
	buf := statusBufs.Get().(*[]projection.Status)
	defer putStatusBuf(buf)
	if v := s.acquireView(); v != nil {
		defer v.mu.RUnlock()
		c := v.cursors.Get().(*viewCursors)
		defer v.cursors.Put(c)
		st, err := s.statusOf(c.usernames, c.users, key, q.Now, p, (*buf)[:0])
		if err != nil {
			return err
		}
		*buf = st
		return fn(st, v.fresh)
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := s.statusOf(tx.Bucket(bucketUsernames).Cursor(), tx.Bucket(bucketUsers).Cursor(), key, q.Now, p, (*buf)[:0])
	if err != nil {
		return err
	}
	*buf = st
	return fn(st, s.freshness(tx))
}

// statusBufs hold *[]projection.Status for statusRead: an answer's
// slice, lent to its caller, comes back for the next query.
var statusBufs = sync.Pool{New: func() any { return new([]projection.Status) }}

// putStatusBuf clears buf (nothing kept alive through it: its strings view
// a transaction's pages) and returns it to the pool, unless it grew large.
func putStatusBuf(buf *[]projection.Status) {
	if cap(*buf) > 1024 {
		return
	}
	clear((*buf)[:cap(*buf)]) // past len too: an answer cut short leaves views there
	*buf = (*buf)[:0]
	statusBufs.Put(buf)
}

// statusOf looks lower up in the username index and the record it names,
// and appends the answer under p to out.
func (s *Store) statusOf(usernames, users *bolt.Cursor, lower []byte, now time.Time, p projection.Policy, out []projection.Status) ([]projection.Status, error) {
	id := nameHolder(seekExact(usernames, lower))
	if id == nil {
		return out, nil
	}
	v := seekExact(users, id)
	if v == nil {
		return out, nil
	}
	name, st, err := statusOfRecord(v, now, p, out)
	if err != nil {
		return out, fmt.Errorf("user %d: %w", userID(id), err)
	}
	// The index follows the record's username; a mismatch would be a bug,
	// and answering another user's data is the worst one.
	if projection.LowerUsername(name) != string(lower) {
		return st[:0], nil
	}
	return st, nil
}

// statusOfRecord is decodeUser(v) then User.Status(now, p), without
// building the User: it decodes every field, so that a damaged record fails
// as decodeUser fails, but keeps only what the answer needs, appended to
// out. The username and the answer's strings are views of v.
func statusOfRecord(v []byte, now time.Time, p projection.Policy, out []projection.Status) (username string, _ []projection.Status, err error) {
	d := decoder{b: v, s: unsafe.String(unsafe.SliceData(v), len(v))}
	if ver := d.byte(); ver != userRecordV1 && d.err == nil {
		return "", nil, fmt.Errorf("%w: user record version %d", errCorrupt, ver)
	}
	d.varint() // id
	username = d.string()
	d.time() // username time
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every entry takes at least a byte
		return "", nil, fmt.Errorf("%w: %d course entries in %d bytes", errCorrupt, n, len(d.b))
	}
	// As projection.User.Status, entry by entry.
	// Times are compared as instants, without a time.Time each.
	since := instantOf(now.Add(-p.Window))
	out = slices.Grow(out, min(int(n), max(p.Limit, 0)))
	considered := 0
	for range n {
		courseID := d.string()
		flags := d.byte()
		mobile := projection.Availability(d.byte())
		created, enrolled := instantOf(time.Time{}), instantOf(time.Time{})
		if flags&flagEnrolled != 0 {
			d.string() // mode
			created = d.instant()
			enrolled = d.instant()
		}
		last := d.instant()
		var name string
		hasName := flags&flagHasName != 0
		if hasName {
			name = d.string()
		}
		// Active enrollments only (Known: an enrollment time), the first
		// p.Limit of them, then the mobile filter.
		if enrolled.isZero() || flags&flagActive == 0 || considered >= p.Limit {
			continue
		}
		considered++
		if !mobileAvailable(p, mobile) {
			continue
		}
		out = append(out, projection.Status{CourseID: courseID, CourseName: name, HasCourseName: hasName,
			RecentlyActive: (!last.isZero() && !last.before(since)) || since.before(created)})
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	if d.err != nil {
		return "", out[:0], d.err
	}
	return username, out, nil
}

// mobileAvailable is projection.Policy's mobile filter.
func mobileAvailable(p projection.Policy, a projection.Availability) bool {
	switch p.Mobile {
	case projection.MobileOff:
		return true
	case projection.MobileStrict:
		return a == projection.Available
	default:
		return a != projection.Unavailable
	}
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

// detachStatus copies st, and its strings (views of page memory) into one
// allocation of their own.
func detachStatus(st []projection.Status) []projection.Status {
	if len(st) == 0 {
		return nil
	}
	st = slices.Clone(st)
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
	return st
}
