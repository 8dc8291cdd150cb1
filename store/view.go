package store

import (
	"bytes"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/projection"
)

// A view is one read-only transaction shared by every query between two
// writes, as etcd's backend shares one among its readers (its
// concurrentReadTx). A query then opens no transaction of its own (bbolt's
// Begin and Rollback take two global locks each), looks no bucket up, and
// seeks with cursors kept in a pool: it allocates nothing in bbolt.
//
// Reads on a read-only bbolt transaction change nothing shared but atomic
// statistics: a cursor keeps its own stack and reads page memory. The view
// is closed before every write transaction begins, because a commit that
// grows the file remaps it, and a remap waits for every read transaction to
// end; while a write is under way, queries open transactions of their own,
// as they did before views, and the next query after it opens a new view.
// A view open between writes also keeps bbolt from reusing pages freed after
// it, which is why it never outlives the next write.
type view struct {
	mu     sync.RWMutex // shared by each query, exclusive to close
	closed bool         // under mu
	tx     *bolt.Tx
	fresh  projection.Freshness
	// cursors hold *viewCursors of tx.
	cursors sync.Pool
}

// viewCursors are one query's cursors on the buckets Status reads.
type viewCursors struct {
	usernames, users *bolt.Cursor
}

// views is the Store's current view and what decides when one may open.
type views struct {
	mu      sync.Mutex
	writing bool // a write transaction is open: no view may open
	cur     *view
	// current is cur for queries, read without mu.
	current atomic.Pointer[view]
}

// acquireView returns the current view, opening one if none is open and no
// write is under way, with its read lock held; nil when the query must open
// a transaction of its own. The caller releases it with v.mu.RUnlock.
func (s *Store) acquireView() *view {
	for range 2 {
		v := s.views.current.Load()
		if v == nil {
			if v = s.openView(); v == nil {
				return nil
			}
		}
		v.mu.RLock()
		if !v.closed {
			return v
		}
		v.mu.RUnlock() // closed after it was loaded: try the next one
	}
	return nil
}

// openView opens a view unless one is open or a write is under way.
func (s *Store) openView() *view {
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	if s.views.writing {
		return nil
	}
	if s.views.cur != nil {
		return s.views.cur
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil // closed: the query's own Begin reports it
	}
	v := &view{tx: tx, fresh: readFreshness(tx)}
	usernames, users := tx.Bucket(bucketUsernames), tx.Bucket(bucketUsers)
	v.cursors.New = func() any {
		return &viewCursors{usernames: usernames.Cursor(), users: users.Cursor()}
	}
	s.views.cur = v
	s.views.current.Store(v)
	return v
}

// beginWrite closes the view, after the queries reading it are done, and
// keeps new ones from opening until endWrite.
func (s *Store) beginWrite() {
	s.views.mu.Lock()
	s.views.writing = true
	v := s.views.cur
	s.views.cur = nil
	s.views.current.Store(nil)
	s.views.mu.Unlock()
	if v != nil {
		v.close()
	}
}

// endWrite lets views open again.
func (s *Store) endWrite() {
	s.views.mu.Lock()
	s.views.writing = false
	s.views.mu.Unlock()
}

func (v *view) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	_ = v.tx.Rollback() // a read-only transaction: nothing to lose
}

// seekExact is Bucket.Get through a cursor: the value of key, nil if key is
// missing or names a nested bucket.
func seekExact(c *bolt.Cursor, key []byte) []byte {
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}
