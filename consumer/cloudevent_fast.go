package consumer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/jsonscan"
	"github.com/enrollstatus/enrollstatus/projection"
)

// The fast path of native JSON decoding. encoding/json validates its whole
// input before decoding it, and a CloudEvent used to be decoded four times
// over (the probe's map, the envelope, the data, the tracking log's data
// string and its payload): about 15 µs per block completion, most of the
// ingest CPU. The fast path reads the common, canonical shapes of a message
// known to be valid UTF-8 (Decoder.decode checked) in one pass that also
// validates the JSON: every string it reads or skips, every value it
// skips, every number, and the structure around them, so that whatever it
// takes is JSON that encoding/json would accept. It gives up (ok == false)
// on invalid JSON and on anything it is not sure to read exactly as
// encoding/json would: a key with an escape, a key that matches a field
// only case-insensitively, a repeated field, a value of an unexpected JSON
// type, an escaped string it would have to unescape, a time that does not
// parse, nesting deeper than maxSkipDepth. The slow path then decides, so
// every message decodes to exactly what it always did;
// TestCloudEventFastPathAgrees and FuzzCloudEventFastPath check that,
// invalid JSON included.

// maxSkipDepth bounds the nesting of a value the fast path skips, far
// within encoding/json's 10,000 levels together with the few levels of the
// shapes around it; deeper values go to the slow path.
const maxSkipDepth = 1000

// jcur is a cursor over JSON text that validates what it reads.
type jcur struct {
	b []byte
	i int
}

func (c *jcur) ws() { c.i = jsonscan.SkipSpace(c.b, c.i) }

// peek returns the next non-space byte, 0 at the end.
func (c *jcur) peek() byte {
	c.ws()
	if c.i >= len(c.b) {
		return 0
	}
	return c.b[c.i]
}

// atEnd reports whether only whitespace is left. (peek's 0 cannot tell the
// end from a NUL byte, which is no JSON after a value.)
func (c *jcur) atEnd() bool {
	c.ws()
	return c.i >= len(c.b)
}

func (c *jcur) eat(ch byte) bool {
	if c.peek() != ch {
		return false
	}
	c.i++
	return true
}

// str reads and validates a string token and returns its raw content and
// whether it holds an escape (then the raw content is not the value).
func (c *jcur) str() (raw []byte, escaped, ok bool) {
	if c.peek() != '"' {
		return nil, false, false
	}
	end, escaped, ok := jsonscan.String(c.b, c.i)
	if !ok {
		return nil, false, false
	}
	raw, c.i = c.b[c.i+1:end-1], end
	return raw, escaped, true
}

// plainRaw reads a string without escapes and returns its bytes.
func (c *jcur) plainRaw() ([]byte, bool) {
	raw, escaped, ok := c.str()
	return raw, ok && !escaped
}

// plain reads a string without escapes.
func (c *jcur) plain() (string, bool) {
	raw, escaped, ok := c.str()
	if !ok || escaped {
		return "", false
	}
	return string(raw), true
}

// text reads a string, unescaping it exactly as encoding/json does when it
// holds escapes.
func (c *jcur) text() (string, bool) {
	c.ws()
	start := c.i
	raw, escaped, ok := c.str()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(raw), true
	}
	var s string
	if err := json.Unmarshal(c.b[start:c.i], &s); err != nil {
		return "", false
	}
	return s, true
}

// boolPtr reads what a *bool field reads: null (nil), true or false.
func (c *jcur) boolPtr() (*bool, bool) {
	switch c.peek() {
	case 'n':
		return nil, c.isNull()
	case 't', 'f':
		raw, ok := c.skip()
		v := string(raw) == "true"
		if !ok || !v && string(raw) != "false" {
			return nil, false
		}
		return &v, true
	}
	return nil, false
}

// skip validates and skips one value and returns its raw bytes.
func (c *jcur) skip() ([]byte, bool) {
	if c.peek() == 0 {
		return nil, false
	}
	start := c.i
	end, ok := jsonscan.Skip(c.b, c.i, maxSkipDepth)
	if !ok {
		return nil, false
	}
	c.i = end
	return c.b[start:end], true
}

// skipObject skips an object without validating what is inside its
// strings' delimiters and brackets: for a value that is read again, with
// this cursor's validation, right after (an envelope's data, which must be
// skipped until the type is known). It returns the object's raw bytes.
func (c *jcur) skipObject() ([]byte, bool) {
	switch c.peek() {
	case '{':
		start, depth := c.i, 0
		for c.i < len(c.b) {
			switch c.b[c.i] {
			case '"': // to the closing quote
				end := c.i + 1
				for {
					q := bytes.IndexByte(c.b[end:], '"')
					if q < 0 {
						return nil, false
					}
					end += q + 1
					if escapedQuote(c.b[c.i+1 : end-1]) {
						continue
					}
					break
				}
				c.i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			c.i++
			if depth == 0 {
				return c.b[start:c.i], true
			}
		}
	}
	return nil, false
}

// object calls field for each member of an object, with the key's raw
// content and whether it holds an escape; field reads the value. It stops
// at the first false.
func (c *jcur) object(field func(key []byte, escaped bool) bool) bool {
	if !c.eat('{') {
		return false
	}
	if c.eat('}') {
		return true
	}
	for {
		key, escaped, ok := c.str()
		if !ok || !c.eat(':') || !field(key, escaped) {
			return false
		}
		if c.eat(',') {
			continue
		}
		return c.eat('}')
	}
}

// fields reads an object whose known members are named in names: read is
// called once for each of them, and any other member is skipped. It gives
// up on a key with an escape, a key equal to a name only up to case (which
// encoding/json would take), and a repeated name (which encoding/json
// merges).
func (c *jcur) fields(names []string, read func(i int) bool) bool {
	var seen uint32
	return c.object(func(key []byte, escaped bool) bool {
		if escaped {
			return false
		}
		for i, n := range names {
			if string(key) == n {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				return read(i)
			}
			if len(key) == len(n) && strings.EqualFold(string(key), n) { // ASCII keys fold to their own length; others give up below
				return false
			}
		}
		for _, r := range string(key) { // Unicode case folding: leave it to encoding/json
			if r >= 0x80 {
				return false
			}
		}
		_, ok := c.skip()
		return ok
	})
}

// escapedQuote reports whether a quote that follows s is escaped: whether
// s ends in an odd number of backslashes.
func escapedQuote(s []byte) bool {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// isNull reads a null if one is next.
func (c *jcur) isNull() bool {
	if c.peek() == 'n' && c.i+4 <= len(c.b) && string(c.b[c.i:c.i+4]) == "null" {
		c.i += 4
		return true
	}
	return false
}

// time reads what flexTime reads: null, or a string ParseTime accepts.
func (c *jcur) time() (time.Time, bool) {
	if c.isNull() {
		return time.Time{}, true
	}
	raw, ok := c.plainRaw()
	if !ok {
		return time.Time{}, false
	}
	if t, ok := parseTimeFast(raw); ok {
		return t, true
	}
	t, err := ParseTime(string(raw))
	return t, err == nil
}

// int reads what flexInt reads, in its plain forms: null, an integer, or a
// string holding only an integer.
func (c *jcur) int() (int64, bool) {
	if c.isNull() {
		return 0, true
	}
	var raw []byte
	if c.peek() == '"' {
		r, escaped, ok := c.str()
		if !ok || escaped {
			return 0, false
		}
		raw = r
	} else {
		r, ok := c.skip()
		if !ok {
			return 0, false
		}
		raw = r
	}
	if len(raw) == 0 {
		return 0, false
	}
	for k, ch := range raw {
		if !(ch >= '0' && ch <= '9' || ch == '-' && k == 0) {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	return v, err == nil
}

// probeKeys reports which of specversion, payload and op are top-level keys
// of the JSON object b, which must be valid JSON.
func probeKeys(b []byte) (spec, payload, op, ok bool) {
	c := jcur{b: b}
	ok = c.object(func(key []byte, escaped bool) bool {
		if escaped { // as the map of the former probe saw it
			var k string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				return false
			}
			key = []byte(k)
		}
		switch string(key) {
		case "specversion":
			spec = true
		case "payload":
			payload = true
		case "op":
			op = true
		}
		_, ok := c.skip()
		return ok
	})
	return spec, payload, op, ok
}

var envelopeFields = []string{"specversion", "type", "id", "source", "time", "data"}

// internType returns the known type spelled raw without allocating, else a
// copy of raw.
func internType(raw []byte) string {
	switch string(raw) {
	case TypeTrackingEvent:
		return TypeTrackingEvent
	case TypeEnrollmentCreated:
		return TypeEnrollmentCreated
	case TypeEnrollmentChanged:
		return TypeEnrollmentChanged
	case TypeUnenrollmentComplete:
		return TypeUnenrollmentComplete
	}
	return string(raw)
}

// fastCloudEvent decodes a CloudEvent whose envelope is canonical. handled
// is false when the slow path must decide.
func fastCloudEvent(b []byte) (dec Decoded, handled bool, err error) {
	var spec []byte
	var ceType string
	var at time.Time
	var data []byte
	// The data comes before the type in the envelopes json.Marshal writes
	// (keys sorted), so it is read where it is, as the shape its first key
	// names, rather than skipped and read again; if the type then turns out
	// to want another shape, it is read again as that.
	var (
		inPlace    string // the first key of data read in place, if any
		tracking   trackingRead
		enrollment enrollmentData
	)
	c := jcur{b: b}
	ok := c.fields(envelopeFields, func(i int) bool {
		var ok bool
		switch i {
		case 0:
			spec, ok = c.plainRaw()
		case 1:
			var raw []byte
			if raw, ok = c.plainRaw(); ok {
				ceType = internType(raw)
			}
		case 2, 3: // id, source: strings, unused
			_, ok = c.plainRaw()
		case 4:
			at, ok = c.time()
		case 5:
			c.ws()
			start := c.i
			switch inPlace = firstKey(c); inPlace {
			case "tracking_log":
				tracking, ok = readTrackingData(&c)
			case "enrollment":
				enrollment, ok = readEnrollmentData(&c)
			default: // validated by whichever reads it below
				inPlace = ""
				_, ok = c.skipObject()
			}
			data = c.b[start:c.i]
		}
		return ok
	})
	if !ok || !c.atEnd() || string(spec) != "1.0" || data == nil || ceType == "" {
		return dec, false, nil
	}
	dec = Decoded{Type: typeLabel(ceType)}
	var e projection.Event
	var ignored string
	switch ceType {
	case TypeTrackingEvent:
		if inPlace == "tracking_log" {
			e, ignored, ok = tracking.event(at)
		} else {
			e, ignored, ok = fastTrackingData(data, at)
		}
		if !ok {
			return Decoded{}, false, nil
		}
	case TypeEnrollmentCreated, TypeEnrollmentChanged, TypeUnenrollmentComplete:
		if inPlace == "enrollment" {
			e, ok = enrollment.event(ceType, at)
		} else {
			e, ok = fastEnrollmentData(ceType, data, at)
		}
		if !ok {
			return Decoded{}, false, nil
		}
	default:
		if !jsonscan.Valid(data) {
			return Decoded{}, false, nil
		}
		e, ignored, err = cloudEventData(ceType, data, at)
	}
	if err != nil {
		return dec, true, err
	}
	dec.Ignored = ignored
	if e != nil {
		dec.Events = []projection.Event{e}
	}
	return dec, true, nil
}

var (
	trackingDataFields = []string{"tracking_log"}
	trackingLogFields  = []string{"name", "timestamp", "data"}
	completionFields   = []string{"user_id", "course_id", "block_id", "created"}
)

// firstKey returns the first key of the object at c, without moving c, or
// "" if there is none or it holds an escape.
func firstKey(c jcur) string {
	if !c.eat('{') {
		return ""
	}
	raw, escaped, ok := c.str()
	if !ok || escaped {
		return ""
	}
	switch string(raw) {
	case "tracking_log":
		return "tracking_log"
	case "enrollment":
		return "enrollment"
	}
	return ""
}

// trackingRead is what the data of a tracking event holds.
type trackingRead struct {
	name  []byte
	stamp time.Time
	// data is the tracking log's data: a JSON object, or the value of the
	// JSON string that holds one (the LMS sends a string), unescaped as it
	// was read into text, a buffer of textPool.
	data []byte
	text *[]byte
}

// textPool holds the buffers tracking logs' data strings are unescaped
// into: the completion read from one copies what it keeps, so the buffer
// serves the next message.
var textPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledText bounds the buffers textPool keeps: the one an unusually
// large message grew goes to the collector.
const maxPooledText = 64 << 10

// fastTrackingData reads the data of a tracking event as cloudEventData
// and trackingEvent do.
func fastTrackingData(data []byte, at time.Time) (projection.Event, string, bool) {
	c := jcur{b: data}
	t, ok := readTrackingData(&c)
	if !ok || !c.atEnd() {
		return nil, "", false
	}
	return t.event(at)
}

// readTrackingData reads the data object of a tracking event at c.
func readTrackingData(c *jcur) (t trackingRead, ok bool) {
	seen := false
	ok = c.fields(trackingDataFields, func(int) bool {
		seen = true
		return c.fields(trackingLogFields, func(i int) bool {
			var ok bool
			switch i {
			case 0:
				t.name, ok = c.plainRaw()
			case 1:
				t.stamp, ok = c.time()
			case 2:
				if c.peek() != '"' {
					t.data, ok = c.skip()
					break
				}
				t.text = textPool.Get().(*[]byte)
				var end int
				t.data, end, ok = jsonscan.AppendSimple((*t.text)[:0], c.b, c.i)
				c.i = end
			}
			return ok
		})
	})
	return t, ok && seen
}

// event is the tracking event a CloudEvent of time at carries. It is
// called once: the buffer of t's data goes back to its pool.
func (t trackingRead) event(at time.Time) (projection.Event, string, bool) {
	if t.text != nil {
		defer func() {
			if cap(t.data) <= maxPooledText {
				*t.text = t.data[:0] // kept if it grew
				textPool.Put(t.text)
			}
		}()
	}
	if string(t.name) != CompletionEventName {
		return nil, fmt.Sprintf("tracking event %q", truncate(string(t.name), 100)), true
	}
	if at.IsZero() {
		at = t.stamp
	}
	comp, ok := completionObject(t.data, at)
	if !ok {
		return nil, "", false
	}
	return comp, "", true
}

// fastCompletionText is fastCompletion for data that nothing validated yet
// (an event-bus record's tracking log): false unless it is a JSON object or
// exactly one valid JSON string token.
func fastCompletionText(data string, at time.Time) (projection.Completion, bool) {
	return fastCompletion([]byte(data), at) // which validates all it takes
}

// fastCompletion reads the data of a block completion's tracking log, a
// JSON object or a JSON string holding one (the LMS sends a string), as
// trackingEvent does, into a completion at time at; false where it might
// read differently or refuse. A string must be one valid JSON string token.
func fastCompletion(raw []byte, at time.Time) (projection.Completion, bool) {
	if len(raw) > 0 && raw[0] == '"' {
		s, end, ok := jsonscan.AppendSimple(make([]byte, 0, len(raw)), raw, 0)
		if !ok || end != len(raw) {
			return projection.Completion{}, false
		}
		raw = s // validated as it is read below
	}
	return completionObject(raw, at)
}

// completionObject is fastCompletion for the object itself.
func completionObject(raw []byte, at time.Time) (projection.Completion, bool) {
	var comp projection.Completion
	p := jcur{b: raw}
	ok := p.fields(completionFields, func(i int) bool {
		var ok bool
		switch i {
		case 0:
			comp.UserID, ok = p.int()
		case 1:
			comp.CourseID, ok = p.plain()
		case 2:
			comp.BlockID, ok = p.plain()
		case 3:
			comp.Created, ok = p.time()
		}
		return ok
	})
	if !ok || !p.atEnd() {
		return comp, false
	}
	comp.Time = at
	return comp, true
}

var (
	enrollmentDataFields   = []string{"enrollment"}
	enrollmentFields       = []string{"user", "course", "mode", "is_active", "creation_date"}
	enrollmentUserFields   = []string{"id", "is_active", "pii"}
	enrollmentPIIFields    = []string{"username"}
	enrollmentCourseFields = []string{"course_key", "display_name"}
)

// fastEnrollmentData reads the data of an enrollment event of type ceType as
// cloudEventData does, into the same enrollmentData. It gives up (false)
// wherever the slow path might read differently or refuse.
func fastEnrollmentData(ceType string, data []byte, at time.Time) (projection.Event, bool) {
	c := jcur{b: data}
	d, ok := readEnrollmentData(&c)
	if !ok || !c.atEnd() {
		return nil, false
	}
	return d.event(ceType, at)
}

// event is the enrollment event a CloudEvent of type ceType and time at
// carries, read as cloudEventData does; false where the slow path might
// read differently or refuse.
func (d enrollmentData) event(ceType string, at time.Time) (projection.Event, bool) {
	if at.IsZero() {
		return nil, false // the slow path says why
	}
	e, err := enrollmentEvent(ceType, d, at)
	if err != nil {
		return nil, false
	}
	return e, true
}

// readEnrollmentData reads the data object of an enrollment event at c.
func readEnrollmentData(cur *jcur) (d enrollmentData, ok bool) {
	c := cur
	// optText reads a string field: null leaves it as it is, as in
	// encoding/json.
	optText := func(dst *string) bool {
		if c.isNull() {
			return true
		}
		s, ok := c.text()
		*dst = s
		return ok
	}
	user := func(i int) bool {
		var ok bool
		switch i {
		case 0:
			var id int64
			id, ok = c.int()
			d.User.ID = flexInt(id)
		case 1:
			d.User.IsActive, ok = c.boolPtr()
		case 2:
			if c.isNull() {
				d.User.PII = nil
				return true
			}
			d.User.PII = &userPII{}
			ok = c.fields(enrollmentPIIFields, func(int) bool { return optText(&d.User.PII.Username) })
		}
		return ok
	}
	course := func(i int) bool {
		if i == 0 {
			return optText(&d.Course.CourseKey)
		}
		if c.isNull() {
			d.Course.DisplayName = nil
			return true
		}
		s, ok := c.text()
		d.Course.DisplayName = &s
		return ok
	}
	enrollment := func(i int) bool {
		var ok bool
		switch i {
		case 0:
			ok = c.isNull() || c.fields(enrollmentUserFields, user)
		case 1:
			ok = c.isNull() || c.fields(enrollmentCourseFields, course)
		case 2:
			ok = optText(&d.Mode)
		case 3:
			d.IsActive, ok = c.boolPtr()
		case 4:
			var t time.Time
			t, ok = c.time()
			d.CreationDate = flexTime(t)
		}
		return ok
	}
	ok = c.fields(enrollmentDataFields, func(int) bool {
		return c.isNull() || c.fields(enrollmentFields, enrollment)
	})
	return d, ok
}
