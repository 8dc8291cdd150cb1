package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The record encoding: compact, versioned, and fast to decode on the query
// path. Integers are varints, strings are length-prefixed, times are
// (seconds since the Unix epoch, nanoseconds), so every year from 1 to 9999
// round-trips.

const userRecordV1 = 1

// errCorrupt is wrapped by every decoding error: a record that does not decode
// is a bug or a damaged file, never client input.
var errCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) time(t time.Time) {
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	err error
	// s, when set, holds the bytes b started as: strings are then cut from
	// it instead of each being copied into an allocation of its own.
	s string
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", errCorrupt, what)
	}
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		d.b = nil
		return ""
	}
	var s string
	if d.s != "" {
		off := len(d.s) - len(d.b)
		s = d.s[off : off+int(n)]
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if sec == zeroUnix && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

var zeroUnix = time.Time{}.Unix()

// instant is a time as the record holds it, seconds and nanoseconds since
// the Unix epoch, normalized as time.Unix normalizes them: the query path
// compares instants without building a time.Time for each.
type instant struct{ sec, nsec int64 }

// instantOf is t as an instant.
func instantOf(t time.Time) instant { return instant{t.Unix(), int64(t.Nanosecond())} }

// instant decodes what time decodes, as an instant: d.time().Equal(t) if
// and only if d.instant() == instantOf(t).
func (d *decoder) instant() instant {
	sec, nsec := d.varint(), int64(d.uvarint())
	if nsec < 0 || nsec >= 1e9 { // as time.Unix
		n := nsec / 1e9
		sec += n
		nsec -= n * 1e9
		if nsec < 0 {
			nsec += 1e9
			sec--
		}
	}
	return instant{sec, nsec}
}

// before is a.Before(b) for the times they are.
func (a instant) before(b instant) bool { return a.sec < b.sec || a.sec == b.sec && a.nsec < b.nsec }

// isZero is IsZero for the time it is.
func (a instant) isZero() bool { return a.sec == zeroUnix && a.nsec == 0 }

// Flags of a user's course entry.
const (
	flagEnrolled = 1 << iota // an enrollment event was applied
	flagActive
	flagHasName
)

func encodeUser(buf []byte, u *projection.User) []byte {
	e := encoder{b: buf[:0]}
	e.byte(userRecordV1)
	e.varint(u.ID)
	e.string(u.Username)
	e.time(u.UsernameTime)
	e.uvarint(uint64(len(u.Courses)))
	for i := range u.Courses {
		c := &u.Courses[i]
		var flags byte
		if c.Enrollment.Known() {
			flags |= flagEnrolled
		}
		if c.Enrollment.Active {
			flags |= flagActive
		}
		if c.View.HasName {
			flags |= flagHasName
		}
		e.string(c.CourseID)
		e.byte(flags)
		e.byte(byte(c.View.Mobile))
		if flags&flagEnrolled != 0 {
			e.string(c.Enrollment.Mode)
			e.time(c.Enrollment.Created)
			e.time(c.Enrollment.Time)
		}
		e.time(c.LastCompletion)
		if flags&flagHasName != 0 {
			e.string(c.View.Name)
		}
	}
	return e.b
}

func decodeUser(b []byte) (projection.User, error) { return decodeUserInto(b, 0, nil) }

// decodeUserInto is decodeUser with room for extra more course entries,
// in courses' array when it is large enough.
func decodeUserInto(b []byte, extra int, courses []projection.UserCourse) (projection.User, error) {
	// One copy of the record holds every string of the user (course ids,
	// modes, names): one allocation instead of one per string, on the query
	// path and for every user a batch touches. b itself is bbolt's page
	// memory and must not be kept.
	d := decoder{b: b, s: string(b)}
	var u projection.User
	if v := d.byte(); v != userRecordV1 && d.err == nil {
		return u, fmt.Errorf("%w: user record version %d", errCorrupt, v)
	}
	u.ID = d.varint()
	u.Username = d.string()
	u.UsernameTime = d.time()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every entry takes at least a byte
		return u, fmt.Errorf("%w: %d course entries in %d bytes", errCorrupt, n, len(d.b))
	}
	u.Courses = slices.Grow(courses[:0], int(n)+extra)[:n]
	clear(u.Courses) // a field the record leaves out must be zero, not another user's
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
	return u, d.err
}

const courseRecordV1 = 1

func encodeCourse(buf []byte, m projection.CourseMeta) []byte {
	e := encoder{b: buf[:0]}
	e.byte(courseRecordV1)
	var flags byte
	if m.HasName {
		flags |= flagHasName
	}
	e.byte(flags)
	if m.HasName {
		e.string(m.Name)
		e.time(m.NameTime)
	}
	e.byte(byte(m.Mobile))
	e.time(m.MobileTime)
	return e.b
}

func decodeCourse(b []byte) (projection.CourseMeta, error) {
	d := decoder{b: b}
	var m projection.CourseMeta
	if v := d.byte(); v != courseRecordV1 && d.err == nil {
		return m, fmt.Errorf("%w: course record version %d", errCorrupt, v)
	}
	if d.byte()&flagHasName != 0 {
		m.HasName = true
		m.Name = d.string()
		m.NameTime = d.time()
	}
	m.Mobile = projection.Availability(d.byte())
	m.MobileTime = d.time()
	return m, d.err
}

// Keys.

func userKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func userID(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// A username index entry is the key of the record holding the name, then
// the keys of the other records that carry it, in key order (there are
// others only when a rename was never seen: see settleName).

// nameEntry encodes an entry; it sorts others.
func nameEntry(holder []byte, others [][]byte) []byte {
	slices.SortFunc(others, bytes.Compare)
	return bytes.Join(append([][]byte{holder}, others...), nil)
}

// nameHolder is the key of the record holding a name: the first of its
// entry; nil for none.
func nameHolder(entry []byte) []byte {
	if len(entry) < 8 {
		return nil
	}
	return entry[:8]
}

// nameCarries reports whether an entry lists key.
func nameCarries(entry, key []byte) bool {
	for k := range slices.Chunk(entry, 8) {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// The member index lists each course's members in blocks of
// 1<<memberBlockBits consecutive user ids: the key is the course id, NUL and
// the block's number (the user id shifted right by memberBlockBits, eight
// bytes big endian), so a course's blocks are the keys under the prefix
// course id + NUL (course ids never contain NUL); the value holds the low
// memberBlockBits bits of each member's id in the block, two bytes big
// endian each, ascending. One key per block rather than per membership: the
// index takes about two bytes a membership instead of about 56, a load
// puts a fraction of the keys, and a batch's joins to a course dirty the
// pages of a few blocks instead of a page each.
const memberBlockBits = 12

// memberBlockKey is the key of the block holding user id's membership of
// courseID.
func memberBlockKey(courseID string, id int64) []byte {
	k := make([]byte, 0, len(courseID)+9)
	k = append(k, courseID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(id)>>memberBlockBits)
}

// memberLow is the part of user id a member block's value holds.
func memberLow(id int64) uint16 { return uint16(uint64(id) & (1<<memberBlockBits - 1)) }

// sameMemberBlock reports whether two users' memberships of a course share
// a block.
func sameMemberBlock(a, b int64) bool {
	return uint64(a)>>memberBlockBits == uint64(b)>>memberBlockBits
}

// appendMembers appends the user ids of a member block to ids.
func appendMembers(ids []int64, key, value []byte) ([]int64, error) {
	if len(key) < 9 || len(value)%2 != 0 {
		return ids, fmt.Errorf("%w: member block %q", errCorrupt, key)
	}
	block := binary.BigEndian.Uint64(key[len(key)-8:]) << memberBlockBits
	for i := 0; i < len(value); i += 2 {
		ids = append(ids, int64(block|uint64(binary.BigEndian.Uint16(value[i:]))))
	}
	return ids, nil
}

// setMember returns a member block's value with low present or absent,
// modifying value in place when it can.
func setMember(value []byte, low uint16, present bool) []byte {
	i, found := memberIndex(value, low)
	switch {
	case found == present:
		return value
	case present:
		return slices.Insert(value, i, byte(low>>8), byte(low))
	default:
		return slices.Delete(value, i, i+2)
	}
}

// memberIndex finds low in a member block's value: the byte offset where it
// is or would be inserted.
func memberIndex(value []byte, low uint16) (int, bool) {
	lo, hi := 0, len(value)/2
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if binary.BigEndian.Uint16(value[2*m:]) < low {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return 2 * lo, 2*lo < len(value) && binary.BigEndian.Uint16(value[2*lo:]) == low
}

// blockBuilder groups memberships that come in the member index's order
// (course, then user id) into blocks.
type blockBuilder struct {
	key, value []byte // the block being filled; key nil before the first
	first      int64  // its first member
}

// add adds user's membership of course. When it is the first of a new
// block, the block it finished is returned, to be put (full).
func (b *blockBuilder) add(course []byte, user int64) (key, value []byte, full bool) {
	if b.key == nil || !sameMemberBlock(user, b.first) || !bytes.Equal(b.key[:len(b.key)-9], course) {
		key, value, full = b.key, b.value, b.key != nil
		// A new slice each time: bbolt keeps a value until the commit.
		b.key, b.value, b.first = memberBlockKey(string(course), user), make([]byte, 0, 16), user
	}
	b.value = setMember(b.value, memberLow(user), true)
	return key, value, full
}

// flush returns the block being filled, if any (full), and starts over.
func (b *blockBuilder) flush() (key, value []byte, full bool) {
	key, value, full = b.key, b.value, b.key != nil
	*b = blockBuilder{}
	return key, value, full
}

func offsetKey(topic string, partition int) []byte {
	k := make([]byte, 0, len(topic)+5)
	k = append(k, topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(partition))
}
