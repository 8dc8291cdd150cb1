package httpapi

import (
	"sync"
	"unicode/utf8"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The response body is built by appending bytes, without reflection: it is
// the one thing every request encodes. The output is what Django REST
// framework's JSONRenderer writes: compact separators, non-ASCII characters
// as UTF-8 (ensure_ascii=False), no HTML escaping of < > &, and U+2028 and
// U+2029 escaped. Invalid UTF-8, which Python strings cannot hold, becomes
// \ufffd.

// appendStatuses appends the JSON list of statuses to dst.
func appendStatuses(dst []byte, statuses []projection.Status) []byte {
	dst = append(dst, '[')
	for i := range statuses {
		s := &statuses[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"course_id":`...)
		dst = appendString(dst, s.CourseID)
		dst = append(dst, `,"course_name":`...)
		if s.HasCourseName {
			dst = appendString(dst, s.CourseName)
		} else {
			dst = append(dst, "null"...)
		}
		if s.RecentlyActive {
			dst = append(dst, `,"recently_active":true}`...)
		} else {
			dst = append(dst, `,"recently_active":false}`...)
		}
	}
	return append(dst, ']')
}

// appendDetail appends {"detail":"..."}, the body of every error.
func appendDetail(dst []byte, detail string) []byte {
	dst = append(dst, `{"detail":`...)
	dst = appendString(dst, detail)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as Python's json module
// escapes with ensure_ascii=False, plus DRF's U+2028/U+2029 escapes.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		i += plainPrefix(s[i:])
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainPrefix is the length of the longest prefix of s of printable ASCII
// other than '"' and '\\': what appendString copies as is. It reads eight
// bytes at a time.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte's high bit is set in the result if the byte is >= 0x80,
		// or else if it is < 0x20, '"' or '\\' (or a lower byte is: a borrow
		// only ever comes from a byte that itself matched).
		q, b := w^(ones*'"'), w^(ones*'\\')
		if (w|(w-ones*0x20)&^w|(q-ones)&^q|(b-ones)&^b)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			break
		}
	}
	return i
}

// bodies recycles response buffers. A buffer grown past maxPooledBody by
// a user with very many courses is dropped rather than kept.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBody = 64 << 10

func getBody() *[]byte { return bodies.Get().(*[]byte) }

func putBody(b *[]byte) {
	if cap(*b) > maxPooledBody {
		return
	}
	*b = (*b)[:0]
	bodies.Put(b)
}
