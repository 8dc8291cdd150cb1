package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Batch is a group of events applied in one transaction together with the
// offsets they were read up to. Either all of it is on disk or none of it.
type Batch struct {
	Events []projection.Event
	// Offsets holds, per partition, the next offset to read after this batch.
	Offsets map[Partition]int64
	// Messages is the number of messages the batch covers (some messages carry
	// no event, some several); it feeds Freshness.Applied.
	Messages int
}

// ApplyResult says what a batch did.
type ApplyResult struct {
	Users   int // users the batch applied events to (a record that did not change is not rewritten)
	Courses int // course records whose metadata changed
	Fanout  int // user records rewritten because a course changed
	// DroppedRetired counts events dropped because their user is retired.
	DroppedRetired int
}

// Apply writes a batch in one write transaction: the events' effects, the
// offsets and the freshness marks. Apply is not safe for concurrent use: the
// store has one writer. Invalid events must be filtered out before.
func (s *Store) Apply(b Batch) (res ApplyResult, err error) {
	s.beginWrite()
	defer s.endWrite()
	err = s.db.Update(func(tx *bolt.Tx) error {
		w := newWriter(tx)
		var err error
		res, err = w.apply(b)
		return err
	})
	return res, err
}

type writer struct {
	users, usernames, courses, members, retired, offsets, meta *bolt.Bucket
	buf                                                        []byte
	// joined holds the batch's membership changes (true: joined, false:
	// left) until flushMembers writes each block they touch once.
	joined map[membership]bool
}

// membership is a user's entry in a course's member index.
type membership struct {
	course string
	user   int64
}

func newWriter(tx *bolt.Tx) *writer {
	return &writer{
		users:     tx.Bucket(bucketUsers),
		usernames: tx.Bucket(bucketUsernames),
		courses:   tx.Bucket(bucketCourses),
		members:   tx.Bucket(bucketMembers),
		retired:   tx.Bucket(bucketRetired),
		offsets:   tx.Bucket(bucketOffsets),
		meta:      tx.Bucket(bucketMeta),
		joined:    map[membership]bool{},
	}
}

func (w *writer) apply(b Batch) (res ApplyResult, err error) {
	byUser := make(map[int64][]projection.Event)
	metas := make(map[string]projection.CourseMeta)
	var latest time.Time
	for _, e := range b.Events {
		if t := e.EventTime(); t.After(latest) {
			latest = t
		}
		if id, ok := projection.UserOf(e); ok {
			byUser[id] = append(byUser[id], e)
		}
		if course, m, ok := projection.MetaOf(e); ok {
			metas[course] = metas[course].Merge(m)
		}
	}

	// Users in key order: sequential writes are bbolt's fast path.
	ids := make([]int64, 0, len(byUser))
	for id := range byUser {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		dropped, err := w.applyUser(id, byUser[id])
		if err != nil {
			return res, fmt.Errorf("user %d: %w", id, err)
		}
		res.DroppedRetired += dropped
		if dropped < len(byUser[id]) {
			res.Users++
		}
	}

	// Course metadata after users and their memberships, so that the
	// fan-out reaches the members this batch added.
	if err := w.flushMembers(); err != nil {
		return res, err
	}
	courses := make([]string, 0, len(metas))
	for c := range metas {
		courses = append(courses, c)
	}
	slices.Sort(courses)
	for _, c := range courses {
		n, changed, err := w.mergeCourse(c, metas[c])
		if err != nil {
			return res, fmt.Errorf("course %q: %w", c, err)
		}
		if changed {
			res.Courses++
		}
		res.Fanout += n
	}

	for p, next := range b.Offsets {
		k := offsetKey(p.Topic, p.Partition)
		if cur := w.offsets.Get(k); len(cur) == 8 && int64(binary.BigEndian.Uint64(cur)) >= next {
			continue // offsets only move forward
		}
		if err := w.offsets.Put(k, binary.BigEndian.AppendUint64(nil, uint64(next))); err != nil {
			return res, err
		}
	}
	return res, w.markFreshness(latest, b.Messages)
}

// applyUser applies one user's events of the batch and returns how many were
// dropped because the user is retired.
func (w *writer) applyUser(id int64, events []projection.Event) (dropped int, err error) {
	key := userKey(id)
	if w.retired.Get(key) != nil {
		return len(events), nil
	}
	for _, e := range events {
		if _, ok := e.(projection.Retirement); ok {
			return len(events), w.retire(key)
		}
	}

	var u projection.User
	stored := w.users.Get(key)
	if stored != nil {
		if u, err = decodeUser(stored); err != nil {
			return 0, err
		}
	} else {
		u.ID = id
	}
	oldName, oldTime := u.Username, u.UsernameTime
	for _, e := range events {
		course := courseOf(e)
		isNew := course != "" && !u.HasCourse(course)
		if evicted := u.Apply(e); evicted != "" {
			w.joined[membership{evicted, id}] = false
		}
		if isNew && u.HasCourse(course) {
			if err := w.join(&u, course); err != nil {
				return 0, err
			}
		}
	}
	if u.Username != oldName || !u.UsernameTime.Equal(oldTime) {
		if err := w.reindex(id, oldName, u); err != nil {
			return 0, err
		}
	}
	return 0, w.putUser(key, &u, stored)
}

func courseOf(e projection.Event) string {
	switch e := e.(type) {
	case projection.Enrollment:
		return e.CourseID
	case projection.Completion:
		return e.CourseID
	}
	return ""
}

// join records the user as a member of the course, so later metadata changes
// reach the record, and copies the course's current metadata into it.
func (w *writer) join(u *projection.User, course string) error {
	w.joined[membership{course, u.ID}] = true
	v := w.courses.Get([]byte(course))
	if v == nil {
		return nil
	}
	m, err := decodeCourse(v)
	if err != nil {
		return fmt.Errorf("course %q: %w", course, err)
	}
	u.SetView(course, m.View())
	return nil
}

// reindex moves the record from the username index entry of its old name
// to its current name's, whose holder it may become (a later claim).
func (w *writer) reindex(id int64, oldName string, u projection.User) error {
	key, name := userKey(id), []byte(projection.LowerUsername(u.Username))
	if old := []byte(projection.LowerUsername(oldName)); oldName != "" && !bytes.Equal(old, name) {
		if err := w.settleName(old, key, nil); err != nil {
			return err
		}
	}
	if len(name) == 0 {
		return nil
	}
	return w.settleName(name, key, &u)
}

// settleName rewrites the username index entry of name after the record
// key's change: with u, the record carries name (its claim may be a later
// one); without, it no longer does. The entry lists every record that
// carries the name, the holder first (claimOrder), the others in key
// order: the LMS keeps names unique, so two records carry one only when a
// rename of one of them was never seen, and if the holder leaves the name
// it goes back to the other. The entry is then a function of the records
// alone, whatever the order of the events.
func (w *writer) settleName(name, key []byte, u *projection.User) error {
	cur := w.usernames.Get(name)
	if len(cur)%8 != 0 {
		return fmt.Errorf("%w: username index entry of %d bytes", errCorrupt, len(cur))
	}
	switch {
	case u != nil && (cur == nil || bytes.Equal(cur, key)):
		if cur == nil {
			return w.usernames.Put(name, key)
		}
		return nil // the common case: the name is the record's alone
	case u == nil && bytes.Equal(cur, key):
		return w.usernames.Delete(name)
	case u == nil && !nameCarries(cur, key):
		return nil
	}
	var carriers []nameClaim
	if u != nil {
		carriers = append(carriers, nameClaim{key, u.UsernameTime})
	}
	for other := range slices.Chunk(cur, 8) {
		if bytes.Equal(other, key) {
			continue
		}
		v := w.users.Get(other)
		if v == nil {
			continue // retired, or an entry an earlier version left behind
		}
		o, err := decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %d: %w", userID(other), err)
		}
		if projection.LowerUsername(o.Username) == string(name) {
			carriers = append(carriers, nameClaim{bytes.Clone(other), o.UsernameTime})
		}
	}
	if len(carriers) == 0 {
		return w.usernames.Delete(name)
	}
	slices.SortFunc(carriers, claimOrder)
	others := make([][]byte, 0, len(carriers)-1)
	for _, c := range carriers[1:] {
		others = append(others, c.key)
	}
	return w.usernames.Put(name, nameEntry(carriers[0].key, others))
}

// nameClaim is a record carrying a username: its key and when it took the
// name.
type nameClaim struct {
	key []byte
	at  time.Time
}

// claimOrder orders the claims on a name, the holder's first: the later
// claim, then the lower key (the record Apply reaches first).
func claimOrder(a, b nameClaim) int {
	if c := b.at.Compare(a.at); c != 0 {
		return c
	}
	return bytes.Compare(a.key, b.key)
}

// flushMembers writes the batch's membership changes into the member index,
// in key order, reading and writing each block they touch once.
func (w *writer) flushMembers() error {
	changes := slices.SortedFunc(maps.Keys(w.joined), func(a, b membership) int {
		if c := strings.Compare(a.course, b.course); c != 0 {
			return c
		}
		return cmp.Compare(uint64(a.user), uint64(b.user))
	})
	for i := 0; i < len(changes); {
		first := changes[i]
		key := memberBlockKey(first.course, first.user)
		stored := w.members.Get(key)
		block := bytes.Clone(stored)
		for ; i < len(changes) && changes[i].course == first.course && sameMemberBlock(changes[i].user, first.user); i++ {
			block = setMember(block, memberLow(changes[i].user), w.joined[changes[i]])
		}
		var err error
		switch {
		case bytes.Equal(block, stored):
		case len(block) == 0:
			err = w.members.Delete(key)
		default:
			err = w.members.Put(key, block)
		}
		if err != nil {
			return err
		}
	}
	clear(w.joined)
	return nil
}

// putUser writes a user's record unless it equals stored, the record read
// in this transaction (nil for a new user): events that change nothing
// (an older completion, a replayed enrollment) then leave the record's page
// clean, and the commit writes less.
func (w *writer) putUser(key []byte, u *projection.User, stored []byte) error {
	w.buf = encodeUser(w.buf, u)
	if stored != nil && bytes.Equal(w.buf, stored) {
		return nil
	}
	// bbolt keeps a reference to the value until commit: copy it.
	return w.users.Put(key, bytes.Clone(w.buf))
}

// retiredMark is the value of a retired user's key: empty, never modified.
var retiredMark = []byte{}

// retire erases everything about a user and marks the id so later events for
// it are dropped. No byte of the username stays in a live page.
func (w *writer) retire(key []byte) error {
	if v := w.users.Get(key); v != nil {
		u, err := decodeUser(v)
		if err != nil {
			return err
		}
		for _, c := range u.Courses {
			w.joined[membership{c.CourseID, u.ID}] = false
		}
		if u.Username != "" {
			if err := w.settleName([]byte(projection.LowerUsername(u.Username)), key, nil); err != nil {
				return err
			}
		}
		if err := w.users.Delete(key); err != nil {
			return err
		}
	}
	// The mark holds no time: retirements converge however often and in
	// whatever order they are seen.
	return w.retired.Put(key, retiredMark)
}

// mergeCourse merges metadata into a course and, when what an answer shows
// changed, into the record of every member. It returns the number of records
// rewritten.
func (w *writer) mergeCourse(course string, m projection.CourseMeta) (fanout int, changed bool, err error) {
	key := []byte(course)
	var cur projection.CourseMeta
	if v := w.courses.Get(key); v != nil {
		if cur, err = decodeCourse(v); err != nil {
			return 0, false, err
		}
	}
	merged := cur.Merge(m)
	if merged == cur {
		return 0, false, nil
	}
	if err := w.courses.Put(key, encodeCourse(nil, merged)); err != nil {
		return 0, false, err
	}
	if merged.View() == cur.View() {
		return 0, true, nil
	}
	view := merged.View()
	prefix := append([]byte(course), 0)
	c := w.members.Cursor()
	var ids []int64
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
		if ids, err = appendMembers(ids, k, v); err != nil {
			return 0, true, err
		}
	}
	for _, id := range ids {
		uk := userKey(id)
		v := w.users.Get(uk)
		if v == nil {
			continue
		}
		u, err := decodeUser(v)
		if err != nil {
			return fanout, true, fmt.Errorf("user %d: %w", id, err)
		}
		if u.SetView(course, view) {
			if err := w.putUser(uk, &u, nil); err != nil {
				return fanout, true, err
			}
			fanout++
		}
	}
	return fanout, true, nil
}

// markFreshness records the batch's greatest event time, if it is the
// greatest yet, and now as the commit time. An event time past now (a
// producer's clock ahead) counts as now: the freshness headers must not
// claim a projection fresher than it can be.
func (w *writer) markFreshness(latest time.Time, messages int) error {
	now := time.Now()
	if latest.After(now) {
		latest = now
	}
	if !latest.IsZero() {
		prev := w.meta.Get(keyLastEventTime)
		if prev == nil || latest.After((&decoder{b: prev}).time()) {
			e := encoder{}
			e.time(latest)
			if err := w.meta.Put(keyLastEventTime, e.b); err != nil {
				return err
			}
		}
	}
	e := encoder{}
	e.time(now)
	if err := w.meta.Put(keyCommittedAt, e.b); err != nil {
		return err
	}
	var applied uint64
	if v := w.meta.Get(keyApplied); len(v) == 8 {
		applied = binary.BigEndian.Uint64(v)
	}
	return w.meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, applied+uint64(messages)))
}
