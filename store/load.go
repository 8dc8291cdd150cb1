package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enrollstatus/enrollstatus/projection"
)

// A Loader fills an empty store from a replay of the whole history, several
// times faster than Apply: it sorts the events by user in bounded memory
// (an external sort, see sorter) and writes at Finish each user's record
// once, in key order, and then the username and member indexes, also in key
// order: bbolt's fast path, where Apply, batch after batch, rewrites a page
// for nearly every user it touches. The projection's merges are
// order-independent, so the file is the one Apply would have built from the
// same events: each record is folded with projection.User.Apply as
// applyUser folds it (TestLoaderMatchesApply holds the two to the same
// digest).
//
// Nothing is in the store before Finish: a replay that is stopped before then
// leaves an empty file. Finish commits in several transactions, the offsets
// in the last: a Finish that fails leaves a file without offsets, to throw
// away. A Loader is not safe for concurrent use, except Messages.
type Loader struct {
	st     *Store
	opts   LoaderOptions
	events *sorter // user key -> spill-encoded event

	metas    map[string]projection.CourseMeta
	offsets  map[Partition]int64
	messages atomic.Int64
	count    int
	latest   time.Time
	key, buf []byte

	courseIndex map[string]uint32 // the spill encoding's table of course ids
	courseIDs   []string
	minUser     int64 // the range of user ids added, for memberOrder
	maxUser     int64

	// A merge's (NewMergeLoader): the store merged with the events, its
	// offsets when the loader began, and its retired users.
	base        *Store
	positions   map[Partition]int64
	baseRetired map[int64]bool
	// changed holds, during Finish, the courses whose view the added
	// metadata changed: a merge rewrites them into base's records.
	changed map[string]projection.CourseView
}

// LoaderOptions bound a Loader's memory.
type LoaderOptions struct {
	// RunBytes is how many bytes of records are sorted in memory before they
	// are spilled to a temporary file next to the store's (about 25 bytes
	// per completion, 100 per enrollment).
	RunBytes int
	// TxBytes is about how many bytes one write transaction of Finish holds
	// before it commits (bbolt keeps every dirty page until then). Small is
	// fast: keys arrive in order, so a transaction's puts all land in the
	// bucket's last node, which grows in memory until the commit splits it.
	// A 3M-event Finish took 1.57 s at 2 MiB, 2.05 s at 16 MiB, 3.1 s at
	// 64 MiB (the rebuild's file has no fsyncs until it is complete).
	TxBytes int
}

// DefaultLoaderOptions keep a rebuild's memory within the service's budget.
func DefaultLoaderOptions() LoaderOptions {
	return LoaderOptions{RunBytes: 32 << 20, TxBytes: 2 << 20}
}

// ErrNotEmpty is returned by NewLoader for a store that holds anything.
var ErrNotEmpty = errors.New("store is not empty")

// Empty reports whether s holds nothing: no offsets, no users, no
// retirements (a new file, or one only course metadata reached).
func (s *Store) Empty() (bool, error) {
	empty := true
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOffsets, bucketUsers, bucketRetired} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				empty = false
			}
		}
		return nil
	})
	return empty, err
}

// NewLoader returns a loader into s, which must be Empty.
func (s *Store) NewLoader(opts LoaderOptions) (*Loader, error) {
	empty, err := s.Empty()
	if err != nil {
		return nil, err
	}
	if !empty {
		return nil, ErrNotEmpty
	}
	return &Loader{
		st:      s,
		opts:    opts,
		events:  newSorter(s.path, opts.RunBytes),
		metas:   map[string]projection.CourseMeta{},
		offsets: map[Partition]int64{},

		courseIndex: map[string]uint32{},
	}, nil
}

// NewMergeLoader returns a loader into s, which must be Empty, that merges
// the events added with everything base holds: at Finish, s holds what
// base would hold had Apply applied the same events to it, except that the
// username index is settled as a load settles it (the latest claim of each
// name holds it, whoever claimed it first). The events must be those that
// follow base's offsets (Positions); base must not be written to until
// Finish returns.
//
// This is how a projection that holds data catches up with a large
// backlog: every record written once, in key order, instead of Apply
// rewriting a page for nearly every user of every batch.
func (s *Store) NewMergeLoader(base *Store, opts LoaderOptions) (*Loader, error) {
	l, err := s.NewLoader(opts)
	if err != nil {
		return nil, err
	}
	if l.positions, err = base.Offsets(); err != nil {
		return nil, err
	}
	l.base, l.baseRetired = base, map[int64]bool{}
	maps.Copy(l.offsets, l.positions)
	err = base.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetired).ForEach(func(k, _ []byte) error {
			l.baseRetired[userID(k)] = true
			return nil
		})
	})
	return l, err
}

// Positions returns the offsets the events added must follow: base's for a
// merge, none for a load into an empty store.
func (l *Loader) Positions() map[Partition]int64 { return maps.Clone(l.positions) }

// Messages returns the number of messages added so far. Unlike the rest of
// the Loader, it may be called from any goroutine.
func (l *Loader) Messages() int64 { return l.messages.Load() }

// Add takes a batch in: its user events go to the sort, course metadata is
// merged in memory, offsets are kept for Finish to store.
func (l *Loader) Add(b Batch) error {
	for _, e := range b.Events {
		if t := e.EventTime(); t.After(l.latest) {
			l.latest = t
		}
		if course, m, ok := projection.MetaOf(e); ok {
			l.metas[course] = l.metas[course].Merge(m)
		}
		id, ok := projection.UserOf(e)
		if !ok {
			continue
		}
		if l.count == 0 || id < l.minUser {
			l.minUser = id
		}
		l.maxUser = max(l.maxUser, id)
		l.buf = l.appendSpillEvent(l.buf[:0], e)
		l.key = binary.BigEndian.AppendUint64(l.key[:0], uint64(id))
		if err := l.events.add(l.key, l.buf); err != nil {
			return err
		}
		l.count++
	}
	for p, next := range b.Offsets {
		l.offsets[p] = max(l.offsets[p], next)
	}
	l.messages.Add(int64(b.Messages))
	return nil
}

// Close releases the spilled runs. Finish calls it; call it after a replay
// that did not reach Finish.
func (l *Loader) Close() error { return l.events.close() }

// LoadResult says what Finish wrote.
type LoadResult struct {
	Events, Users, Courses int
	Runs                   int // sorted runs of events (1: all fitted in memory)
	// How long writing the records and the indexes took.
	UsersTime, IndexTime time.Duration
}

// Finish writes everything added into the store, in key order and in
// transactions of about TxBytes: course metadata first, so that each record
// gets its courses' final metadata as it is written; then every user's
// record; then the member and username indexes, built from the records; and
// last the offsets and freshness marks, which make the file count as applied
// up to them.
func (l *Loader) Finish() (res LoadResult, err error) {
	defer l.Close()
	res.Events, res.Runs = l.count, l.events.runCount()
	l.st.beginWrite()
	defer l.st.endWrite()
	tx := &loadTx{db: l.st.db, limit: l.opts.TxBytes}
	defer tx.rollback()
	if err := tx.begin(); err != nil {
		return res, err
	}
	var base *bolt.Tx // a merge's: base as it is, read in key order
	metas := l.metas
	if l.base != nil {
		if base, err = l.base.db.Begin(false); err != nil {
			return res, err
		}
		defer base.Rollback()
		if metas, err = l.mergeBase(tx, base); err != nil {
			return res, fmt.Errorf("merge: %w", err)
		}
	}

	courses := slices.Sorted(maps.Keys(metas))
	views := make(map[string]projection.CourseView, len(courses))
	for _, c := range courses {
		views[c] = projection.CourseMeta{}.Merge(metas[c]).View()
		if _, _, err := tx.w.mergeCourse(c, metas[c]); err != nil {
			return res, fmt.Errorf("course %q: %w", c, err)
		}
	}
	res.Courses = len(courses)

	// The events' last run stays in memory while these two fill.
	members := newSorter(l.st.path, l.opts.RunBytes/4)
	defer members.close()
	names := newSorter(l.st.path, l.opts.RunBytes/4)
	defer names.close()
	start := time.Now()
	if res.Users, err = l.writeUsers(tx, base, views, members, names, newMemberOrder(l.courseIDs, l.minUser, l.maxUser)); err != nil {
		return res, err
	}
	res.UsersTime = time.Since(start)
	defer func() { res.IndexTime = time.Since(start) - res.UsersTime }()
	order := newMemberOrder(l.courseIDs, l.minUser, l.maxUser)
	if err := tx.putMembers(members, order); err != nil {
		return res, fmt.Errorf("member index: %w", err)
	}
	if err := tx.putNames(names); err != nil {
		return res, fmt.Errorf("username index: %w", err)
	}

	for p, next := range l.offsets {
		if err := tx.w.offsets.Put(offsetKey(p.Topic, p.Partition), binary.BigEndian.AppendUint64(nil, uint64(next))); err != nil {
			return res, err
		}
	}
	if err := tx.w.markFreshness(l.latest, int(l.messages.Load())); err != nil {
		return res, err
	}
	return res, tx.commit()
}

// mergeBase readies a merge's Finish: it copies base's retirements and
// freshness marks into the new file, adds base's courses to the course
// table and its users to the range of ids (the member index's sort keys),
// and returns base's course metadata merged with the metadata added,
// noting in l.changed the courses whose view that changed.
func (l *Loader) mergeBase(tx *loadTx, base *bolt.Tx) (map[string]projection.CourseMeta, error) {
	if err := base.Bucket(bucketRetired).ForEach(func(k, _ []byte) error {
		return tx.put(bucketRetired, k, retiredMark)
	}); err != nil {
		return nil, err
	}
	meta := base.Bucket(bucketMeta)
	for _, k := range [][]byte{keyLastEventTime, keyApplied} {
		if v := meta.Get(k); v != nil {
			if err := tx.w.meta.Put(k, bytes.Clone(v)); err != nil {
				return nil, err
			}
		}
	}

	old := map[string]projection.CourseMeta{}
	if err := base.Bucket(bucketCourses).ForEach(func(k, v []byte) error {
		m, err := decodeCourse(v)
		if err != nil {
			return fmt.Errorf("course %q: %w", k, err)
		}
		old[string(k)] = m
		return nil
	}); err != nil {
		return nil, err
	}
	merged := maps.Clone(old)
	l.changed = map[string]projection.CourseView{}
	for c, added := range l.metas {
		merged[c] = old[c].Merge(added)
		if now := merged[c].View(); now != old[c].View() {
			l.changed[c] = now
		}
	}

	// The member index holds every course of every record: one seek per
	// course finds them, past each course's blocks (course id, NUL, block).
	c := base.Bucket(bucketMembers).Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: member key %q", errCorrupt, k)
		}
		l.course(string(k[:i]))
		k, _ = c.Seek(append(bytes.Clone(k[:i]), 1))
	}
	users := base.Bucket(bucketUsers).Cursor()
	if first, _ := users.First(); first != nil {
		last, _ := users.Last()
		lo, hi := userID(first), userID(last)
		if hi < 0 { // negative ids sort last: the keys cannot be packed
			lo, hi = hi, max(lo, 0)
		}
		if l.count == 0 {
			l.minUser, l.maxUser = lo, hi
		} else {
			l.minUser, l.maxUser = min(l.minUser, lo), max(l.maxUser, hi)
		}
	}
	return merged, nil
}

// writeUsers writes every user's record and queues its index entries: its
// courses, gathered into the member index's blocks (memberGatherer), and
// its username. Three stages share the work,
// so that both cores do: groupUsers merges the sorted runs and cuts them
// into batches of users' events; foldWorkers fold each user's events into a
// record, two batches at a time; and this goroutine writes the records into
// bbolt, in the order of the batches.
func (l *Loader) writeUsers(tx *loadTx, base *bolt.Tx, views map[string]projection.CourseView, members, names *sorter, order *memberOrder) (users int, err error) {
	it, err := l.events.iterate()
	if err != nil {
		return 0, err
	}
	var records *bolt.Cursor // a merge's: base's records, merged in
	if base != nil {
		records = base.Bucket(bucketUsers).Cursor()
	}
	const workers = 2
	jobs := make(chan foldJob, workers)
	// Each batch's result, in batch order. The folds may run 16 batches
	// (~8,000 users) ahead of the writer, so that they go on while it
	// commits (4 instead: Finish 3-5% slower).
	ordered := make(chan chan foldResult, 8*workers)
	stop := make(chan struct{})
	grouped := make(chan error, 1)
	go func() { grouped <- groupUsers(it, records, jobs, ordered, stop) }()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.result <- l.foldBatch(j.batch, views)
			}
		})
	}
	defer func() {
		close(stop)
		for range ordered { // let groupUsers end
		}
		wg.Wait()
		if gerr := <-grouped; err == nil {
			err = gerr
		}
	}()

	gather := newMemberGatherer(members, order)
	for result := range ordered {
		r := <-result
		if r.err != nil {
			return users, r.err
		}
		for i := range r.users {
			f := &r.users[i]
			if f.dropped {
				continue
			}
			users++
			if f.retired {
				if err := tx.w.retired.Put(f.key, retiredMark); err != nil {
					return users, err
				}
				continue
			}
			if err := tx.w.users.Put(f.key, f.record); err != nil {
				return users, err
			}
			for _, c := range f.courses {
				if err := gather.add(c, userID(f.key)); err != nil {
					return users, err
				}
			}
			if f.nameKey != nil {
				if err := names.add(f.nameKey, f.key); err != nil {
					return users, err
				}
			}
			if err := tx.wrote(len(f.record)); err != nil {
				return users, err
			}
		}
	}
	return users, gather.flush()
}

// userBatch is consecutive users' sorted events, copied out of the runs.
type userBatch struct {
	data  []byte // every user's key and events, back to back
	users []userEvents
}

type userEvents struct {
	key    []byte   // in data
	record []byte   // a merge's: the user's record in base, in data; nil if none
	events [][]byte // spill-encoded, in data
}

type foldJob struct {
	batch  *userBatch
	result chan foldResult
}

type foldResult struct {
	users []foldedUser
	err   error
}

// foldedUser is one user as the sorted events leave it: the record Apply
// would write for a user it has not seen before, or a retirement.
type foldedUser struct {
	key     []byte
	dropped bool // retired in a merge's base: nothing to write
	retired bool
	record  []byte   // encoded, owned: bbolt keeps it until the commit
	courses []string // the record's course ids
	nameKey []byte   // appendNameKey's, or nil without a username
}

// groupUsers reads the sorted events, merged with base's records in a
// merge (records, in key order, or nil), and cuts them into batches of whole
// users, each sent to the fold workers with a channel for its result,
// which goes to ordered in batch order. It closes jobs and ordered when done
// or when stop is closed.
func groupUsers(it *sortIter, records *bolt.Cursor, jobs chan<- foldJob, ordered chan<- chan foldResult, stop <-chan struct{}) error {
	defer close(ordered)
	defer close(jobs)
	const batchUsers = 512
	send := func(b *userBatch) bool {
		result := make(chan foldResult, 1)
		select {
		case jobs <- foldJob{batch: b, result: result}:
		case <-stop:
			return false
		}
		select {
		case ordered <- result:
			return true
		case <-stop:
			return false
		}
	}
	k, v, ok, err := it.next()
	if err != nil {
		return err
	}
	var rk, rv []byte // the next record of base; nil: none left
	if records != nil {
		rk, rv = records.First()
	}
	b := &userBatch{}
	var spans []int // the user's key's end in b.data, then each event's end
	for ok || rk != nil {
		// The next user: the lower key of the next event and the next record.
		key := k
		if !ok || rk != nil && bytes.Compare(rk, k) < 0 {
			key = rk
		}
		keyStart := len(b.data)
		b.data = append(b.data, key...)
		keyEnd := len(b.data)
		u := userEvents{}
		recordAt := -1
		if rk != nil && bytes.Equal(rk, key) {
			recordAt = len(b.data)
			b.data = append(b.data, rv...)
			rk, rv = records.Next()
		}
		spans = append(spans[:0], len(b.data))
		for ok && bytes.Equal(k, b.data[keyStart:keyEnd]) {
			b.data = append(b.data, v...)
			spans = append(spans, len(b.data))
			if k, v, ok, err = it.next(); err != nil {
				return err
			}
		}
		// Slices of b.data only now: the appends above may have moved it.
		u.key = b.data[keyStart:keyEnd]
		if recordAt >= 0 {
			u.record = b.data[recordAt:spans[0]]
		}
		for i := 1; i < len(spans); i++ {
			u.events = append(u.events, b.data[spans[i-1]:spans[i]])
		}
		b.users = append(b.users, u)
		if len(b.users) == batchUsers || !ok && rk == nil {
			if !send(b) {
				return nil
			}
			b = &userBatch{data: make([]byte, 0, cap(b.data))}
		}
	}
	return nil
}

// foldBatch folds each user's events into a record as applyUser does
// (projection.User.Apply, course metadata copied in when an entry is
// created, retirement absorbing). It is safe for concurrent use.
func (l *Loader) foldBatch(b *userBatch, views map[string]projection.CourseView) foldResult {
	out := make([]foldedUser, 0, len(b.users))
	var buf []byte
	var added []string // the courses a user's events add to the record
	// Each user's entries are built in the same array: a user is encoded
	// before the next one is folded.
	var courses []projection.UserCourse
	for _, ue := range b.users {
		key := ue.key
		if l.baseRetired[userID(key)] {
			out = append(out, foldedUser{key: key, dropped: true}) // mergeBase copied the mark
			continue
		}
		added = added[:0]
		for _, v := range ue.events {
			course, err := l.spillCourse(v)
			if err != nil {
				return foldResult{err: err}
			}
			if course != "" {
				added = append(added, course)
			}
		}
		slices.Sort(added)
		added = slices.Compact(added)
		u, retired := projection.User{ID: userID(key), Courses: courses[:0]}, false
		if ue.record != nil {
			var err error
			// With room for the entries the events may add.
			if u, err = decodeUserInto(ue.record, len(added), courses); err != nil {
				return foldResult{err: fmt.Errorf("user %d: %w", userID(key), err)}
			}
			added = slices.DeleteFunc(added, u.HasCourse)
		}
		// The entries the events add, inserted at once with their views.
		inserted := u.InsertCourses(added)
		if inserted {
			for _, c := range added {
				if view, ok := views[c]; ok {
					u.SetView(c, view)
				}
			}
		}
		for _, v := range ue.events {
			course, isRetirement, err := l.applySpillEvent(&u, v, !inserted)
			if err != nil {
				return foldResult{err: err}
			}
			if isRetirement {
				retired = true
				break // every later event of the user is dropped
			}
			if course != "" {
				if view, ok := views[course]; ok {
					u.SetView(course, view)
				}
			}
		}
		// The metadata added reaches every entry of its courses, as
		// mergeCourse's fan-out does.
		for i := range u.Courses {
			if view, ok := l.changed[u.Courses[i].CourseID]; ok {
				u.Courses[i].View = view
			}
		}
		courses = u.Courses
		f := foldedUser{key: key, retired: retired}
		if !retired {
			buf = encodeUser(buf, &u)
			if bytes.Equal(buf, ue.record) {
				f.record = ue.record // unchanged, and the batch's own copy
			} else {
				f.record = bytes.Clone(buf)
			}
			f.courses = make([]string, len(u.Courses))
			for i, c := range u.Courses {
				f.courses[i] = c.CourseID
			}
			if u.Username != "" {
				f.nameKey = appendNameKey(nil, &u)
			}
		}
		out = append(out, f)
	}
	return foldResult{users: out}
}

// appendNameKey orders username claims as settleName settles them: by lower-cased
// name (escaped so that a NUL in a name cannot reach into what follows),
// then the latest claim first, then the lowest user id, whose record a
// sequential Apply would have reached first.
func appendNameKey(b []byte, u *projection.User) []byte {
	for _, c := range []byte(projection.LowerUsername(u.Username)) {
		if b = append(b, c); c == 0 {
			b = append(b, 0xff)
		}
	}
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint64(b, ^(uint64(u.UsernameTime.Unix()) ^ 1<<63))
	b = binary.BigEndian.AppendUint32(b, ^uint32(u.UsernameTime.Nanosecond()))
	return binary.BigEndian.AppendUint64(b, uint64(u.ID))
}

// putNames puts the username index from the sorted username claims
// (appendNameKey's keys, the record's key as value): each name's entry is
// its first claim, the holder, then the other carriers in key order, as
// settleName writes it.
func (t *loadTx) putNames(s *sorter) error {
	it, err := s.iterate()
	if err != nil {
		return err
	}
	var name []byte
	var carriers [][]byte // the holder first
	flush := func() error {
		if name == nil {
			return nil
		}
		return t.put(bucketUsernames, name, nameEntry(carriers[0], carriers[1:]))
	}
	for {
		k, v, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			return flush()
		}
		n := k[:bytes.Index(k, []byte{0, 0})]
		if bytes.IndexByte(n, 0) >= 0 {
			n = bytes.ReplaceAll(n, []byte{0, 0xff}, []byte{0})
		}
		if name != nil && bytes.Equal(n, name) {
			carriers = append(carriers, bytes.Clone(v))
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		name, carriers = bytes.Clone(n), append(carriers[:0], bytes.Clone(v)) // k and v are the iterator's
	}
}

// memberOrder makes the sort keys of the member index's blocks, a course id
// and the block's first user id each. Spelled out (the course id, NUL, the
// user id's eight bytes: the member index's own order) they all begin with the same
// bytes ("course-v1:"), so the external sort would compare every pair byte
// by byte; instead a course's rank among the loader's course ids (in string
// order, which is the index's but for ids holding a NUL) and the user id
// are packed into eight bytes when both fit (24 and 40 bits), which the
// sort orders as one number. member turns a sort key back into its entry.
type memberOrder struct {
	packed bool
	ids    []string // by rank
	rank   map[string]uint64
	buf    []byte // entry's key, valid until the next entry
}

func newMemberOrder(courseIDs []string, minUser, maxUser int64) *memberOrder {
	o := &memberOrder{packed: len(courseIDs) < 1<<24 && minUser >= 0 && maxUser < 1<<40}
	if !o.packed {
		return o
	}
	o.ids = slices.Sorted(slices.Values(courseIDs))
	o.rank = make(map[string]uint64, len(o.ids))
	for i, id := range o.ids {
		o.rank[id] = uint64(i)
	}
	return o
}

// appendKey appends the sort key of course's member entry for user to b;
// false if course is not in the table.
func (o *memberOrder) appendKey(b []byte, course string, user int64) ([]byte, bool) {
	if !o.packed {
		b = append(append(b, course...), 0)
		return binary.BigEndian.AppendUint64(b, uint64(user)), true
	}
	r, ok := o.rank[course]
	return binary.BigEndian.AppendUint64(b, r<<40|uint64(user)), ok
}

// member returns the entry of a sort key: the course id, as the member
// index's key begins (valid until the next call), and the user id.
func (o *memberOrder) member(key []byte) (course []byte, user int64) {
	if !o.packed {
		return key[:len(key)-9], userID(key[len(key)-8:])
	}
	x := binary.BigEndian.Uint64(key)
	o.buf = append(o.buf[:0], o.ids[x>>40]...)
	return o.buf, int64(x & (1<<40 - 1))
}

// memberGatherer gathers the member index's blocks while the records are
// written, in key order: all the users of a block (1<<memberBlockBits
// consecutive ids) come before the next block's, so each course's part of
// a block is whole when the writer moves past it, and goes to the sort as
// one entry, its members' low bits ascending. The sort then orders one
// entry per block, not one per membership.
type memberGatherer struct {
	sort    *sorter
	order   *memberOrder
	block   uint64             // the block being gathered
	courses map[string]*[]byte // every course's low bits in the block, reused
	active  []string           // the courses the block has members of
	key     []byte
}

// maxKeptLows bounds the buffer a memberGatherer keeps for a course
// between blocks (a full block's is 8 KiB).
const maxKeptLows = 512

func newMemberGatherer(s *sorter, order *memberOrder) *memberGatherer {
	return &memberGatherer{sort: s, order: order, courses: map[string]*[]byte{}}
}

// add adds user's membership of course. Users come in key order; one out of
// it is inserted in place, and a block seen again is merged by putMembers.
func (g *memberGatherer) add(course string, user int64) error {
	if block := uint64(user) >> memberBlockBits; block != g.block {
		if err := g.flush(); err != nil {
			return err
		}
		g.block = block
	}
	lows := g.courses[course]
	if lows == nil {
		lows = new([]byte)
		g.courses[course] = lows
	}
	if len(*lows) == 0 {
		g.active = append(g.active, course)
	}
	low := memberLow(user)
	if n := len(*lows); n >= 2 && binary.BigEndian.Uint16((*lows)[n-2:]) >= low {
		*lows = setMember(*lows, low, true)
	} else {
		*lows = binary.BigEndian.AppendUint16(*lows, low)
	}
	return nil
}

// flush sends the block being gathered to the sort.
func (g *memberGatherer) flush() error {
	for _, course := range g.active {
		lows := g.courses[course]
		var ok bool
		if g.key, ok = g.order.appendKey(g.key[:0], course, int64(g.block<<memberBlockBits)); !ok {
			return fmt.Errorf("%w: course %q of block %d is not in the loader's table", errCorrupt, course, g.block)
		}
		if err := g.sort.add(g.key, *lows); err != nil {
			return err
		}
		if cap(*lows) > maxKeptLows {
			*lows = nil // a course most of a block's users took: not kept for every block
		} else {
			*lows = (*lows)[:0]
		}
	}
	g.active = g.active[:0]
	return nil
}

// loadTx is the write transaction a Loader fills, committed and begun anew
// every limit bytes.
type loadTx struct {
	db      *bolt.DB
	tx      *bolt.Tx
	w       *writer
	limit   int
	written int
}

func (t *loadTx) begin() (err error) {
	if t.tx, err = t.db.Begin(true); err != nil {
		return err
	}
	t.w, t.written = newWriter(t.tx), 0
	// Keys arrive in order: pages are written once, so fill them.
	t.w.users.FillPercent = 0.9
	t.w.members.FillPercent = 1
	t.w.usernames.FillPercent = 1
	return nil
}

// wrote counts n bytes into the transaction and commits it when full.
func (t *loadTx) wrote(n int) error {
	if t.written += n; t.written < t.limit {
		return nil
	}
	if err := t.commit(); err != nil {
		return err
	}
	return t.begin()
}

// put puts key and value into bucket and commits when the transaction is
// full. bbolt copies the key and keeps the value until the commit.
func (t *loadTx) put(bucket, key, value []byte) error {
	// The transaction may be a new one after each put, so the bucket is
	// looked up in the current one (bbolt caches it, FillPercent included).
	if err := t.tx.Bucket(bucket).Put(key, value); err != nil {
		return err
	}
	return t.wrote(len(key) + len(value) + 16)
}

func (t *loadTx) commit() error {
	err := t.tx.Commit()
	t.tx = nil
	return err
}

func (t *loadTx) rollback() {
	if t.tx != nil {
		t.tx.Rollback()
	}
}

// putMembers puts the member blocks a memberGatherer sorted into the
// member index. Two parts of one block, which records written out of key
// order would make, are put as one.
func (t *loadTx) putMembers(s *sorter, order *memberOrder) error {
	it, err := s.iterate()
	if err != nil {
		return err
	}
	var key, value []byte
	for {
		k, v, ok, err := it.next()
		if err != nil {
			return err
		}
		if !ok {
			if key == nil {
				return nil
			}
			return t.put(bucketMembers, key, value)
		}
		course, first := order.member(k)
		next := memberBlockKey(string(course), first)
		if bytes.Equal(next, key) {
			for i := 0; i+1 < len(v); i += 2 {
				value = setMember(value, binary.BigEndian.Uint16(v[i:]), true)
			}
			continue
		}
		if key != nil {
			if err := t.put(bucketMembers, key, value); err != nil {
				return err
			}
		}
		key, value = next, bytes.Clone(v) // v is the iterator's
	}
}

// The spill encoding of a user event: a kind byte, the user id, then the
// fields Apply uses (a completion's block id is not one of them), with
// course ids as indexes into the loader's table of them.
const (
	spillEnrollment = iota + 1
	spillCompletion
	spillCompletionAtCreation // a completion whose event time is its creation time
	spillUserInfo
	spillRetirement
)

// course returns the index of a course id in the loader's table.
func (l *Loader) course(id string) uint64 {
	i, ok := l.courseIndex[id]
	if !ok {
		i = uint32(len(l.courseIDs))
		l.courseIndex[id] = i
		l.courseIDs = append(l.courseIDs, id)
	}
	return uint64(i)
}

func (l *Loader) appendSpillEvent(b []byte, ev projection.Event) []byte {
	e := encoder{b: b}
	switch ev := ev.(type) {
	case projection.Enrollment:
		e.byte(spillEnrollment)
		e.varint(ev.UserID)
		e.uvarint(l.course(ev.CourseID))
		e.string(ev.Username)
		e.string(ev.Mode)
		var flags byte
		if ev.Active {
			flags |= flagActive
		}
		if ev.CourseName != nil {
			flags |= flagHasName
		}
		e.byte(flags)
		if ev.CourseName != nil {
			e.string(*ev.CourseName)
		}
		e.time(ev.Created)
		e.time(ev.Time)
	case projection.Completion:
		if ev.Time.Equal(ev.Created) { // decoded times are UTC either way
			e.byte(spillCompletionAtCreation)
		} else {
			e.byte(spillCompletion)
		}
		e.varint(ev.UserID)
		e.uvarint(l.course(ev.CourseID))
		e.time(ev.Created)
		if e.b[len(b)] == spillCompletion {
			e.time(ev.Time)
		}
	case projection.UserInfo:
		e.byte(spillUserInfo)
		e.varint(ev.UserID)
		e.string(ev.Username)
		e.time(ev.Time)
	case projection.Retirement:
		e.byte(spillRetirement)
		e.varint(ev.UserID)
		e.string(ev.Username)
		e.time(ev.Time)
	default:
		panic(fmt.Sprintf("store: %T is not a user event", ev))
	}
	return e.b
}

// spillCourse returns the course id of a spilled event, "" for an event
// without one.
func (l *Loader) spillCourse(b []byte) (string, error) {
	if len(b) == 0 {
		return "", fmt.Errorf("%w: empty spilled event", errCorrupt)
	}
	switch b[0] {
	case spillEnrollment, spillCompletion, spillCompletionAtCreation:
		d := decoder{b: b[1:]}
		d.varint()
		return l.spillCourseID(&d), d.err
	}
	return "", nil
}

func (l *Loader) spillCourseID(d *decoder) string {
	i := d.uvarint()
	if i >= uint64(len(l.courseIDs)) {
		d.fail("course index")
		return ""
	}
	return l.courseIDs[i]
}

// applySpillEvent applies a spilled event to u. It returns the course id of
// an entry the event created, if createsEntries (after InsertCourses, the
// entries are there already), and whether the event is a retirement, which
// it leaves to the caller. Each kind is applied as its own type, so that
// no event is boxed on the heap.
func (l *Loader) applySpillEvent(u *projection.User, b []byte, createsEntries bool) (created string, retirement bool, err error) {
	d := decoder{b: b}
	if len(b) > 0 && b[0] != spillCompletion && b[0] != spillCompletionAtCreation {
		d.s = string(b) // one allocation for the event's strings
	}
	switch kind := d.byte(); kind {
	case spillEnrollment:
		e := projection.Enrollment{UserID: d.varint(), CourseID: l.spillCourseID(&d), Username: d.string(), Mode: d.string()}
		flags := d.byte()
		e.Active = flags&flagActive != 0
		if flags&flagHasName != 0 {
			name := d.string()
			e.CourseName = &name
		}
		e.Created, e.Time = d.time(), d.time()
		if d.err == nil {
			created = applyCourseEvent(u, e, e.CourseID, createsEntries)
		}
	case spillCompletion, spillCompletionAtCreation:
		e := projection.Completion{UserID: d.varint(), CourseID: l.spillCourseID(&d), Created: d.time()}
		e.Time = e.Created
		if kind == spillCompletion {
			e.Time = d.time()
		}
		if d.err == nil {
			created = applyCourseEvent(u, e, e.CourseID, createsEntries)
		}
	case spillUserInfo:
		e := projection.UserInfo{UserID: d.varint(), Username: d.string(), Time: d.time()}
		if d.err == nil {
			u.Apply(e)
		}
	case spillRetirement:
		d.varint()
		d.string()
		d.time()
		retirement = true
	default:
		return "", false, fmt.Errorf("%w: spilled event kind %d", errCorrupt, kind)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes in a spilled event", errCorrupt, len(d.b))
	}
	return created, retirement, d.err
}

// applyCourseEvent applies e, an event about course, to u, and returns
// course if createsEntries and e created its entry.
func applyCourseEvent(u *projection.User, e projection.Event, course string, createsEntries bool) (created string) {
	had := !createsEntries || u.HasCourse(course)
	u.Apply(e)
	if !had && u.HasCourse(course) {
		return course
	}
	return ""
}
