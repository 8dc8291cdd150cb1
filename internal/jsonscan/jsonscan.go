// Package jsonscan validates JSON text in one tight pass, exactly as
// encoding/json does (RFC 8259 grammar, no check of UTF-8). It serves the
// hand-written fast paths of the consumer's CloudEvent decoding and of the
// JWT verifier, which read canonical shapes directly and must first know
// that the text is JSON that encoding/json would accept.
package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// Valid reports whether b is one JSON value, with optional whitespace around
// it: exactly what encoding/json.Valid reports, with its 10,000 levels of
// nesting. It takes about a quarter of encoding/json.Valid's time, whose
// scanner calls a function per byte; TestValidAgrees and FuzzValid hold it
// to encoding/json's answer.
func Valid(b []byte) bool {
	v := validator{b: b, max: maxJSONDepth}
	v.ws()
	if !v.value(0) {
		return false
	}
	v.ws()
	return v.i == len(v.b)
}

// Skip validates the one JSON value that starts at b[i] (no whitespace
// before it) and returns where it ends. Containers may nest maxDepth deep;
// deeper is invalid.
func Skip(b []byte, i, maxDepth int) (end int, ok bool) {
	v := validator{b: b, i: i, max: maxDepth}
	ok = v.value(0)
	return v.i, ok
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type validator struct {
	b   []byte
	i   int
	max int // nesting allowed
}

func (v *validator) ws() { v.i = SkipSpace(v.b, v.i) }

// SkipSpace returns the index of the first byte of b at or after i that is
// not JSON whitespace (RFC 8259: space, tab, line feed, carriage return).
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value validates one value at v.i; depth is the nesting around it.
func (v *validator) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '"':
		return v.str()
	case c == '-' || c >= '0' && c <= '9':
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *validator) literal(lit string) bool {
	if len(v.b)-v.i < len(lit) || string(v.b[v.i:v.i+len(lit)]) != lit {
		return false
	}
	v.i += len(lit)
	return true
}

func (v *validator) object(depth int) bool {
	if depth > v.max {
		return false
	}
	v.i++ // {
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		return true
	}
	for {
		if v.i >= len(v.b) || v.b[v.i] != '"' || !v.str() {
			return false
		}
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return false
		}
		v.i++
		v.ws()
		if !v.value(depth) {
			return false
		}
		if more, ok := v.next('}'); !more {
			return ok
		}
	}
}

func (v *validator) array(depth int) bool {
	if depth > v.max {
		return false
	}
	v.i++ // [
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		return true
	}
	for {
		if !v.value(depth) {
			return false
		}
		if more, ok := v.next(']'); !more {
			return ok
		}
	}
}

// next reads what follows a member of a container: a comma (more members
// follow) or its closing byte (ok, no more); anything else is invalid.
func (v *validator) next(closing byte) (more, ok bool) {
	v.ws()
	if v.i >= len(v.b) {
		return false, false
	}
	switch v.b[v.i] {
	case ',':
		v.i++
		v.ws()
		return true, true
	case closing:
		v.i++
		return false, true
	}
	return false, false
}

// plainByte marks the bytes a string holds as they are: not a control
// character, a quote or a backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (v *validator) str() bool {
	end, _, ok := String(v.b, v.i)
	v.i = end
	return ok
}

// String validates the string token that starts at b[i] (its opening
// quote) and returns the index just past its closing quote, and whether it
// holds an escape (then its raw content is not its value).
func String(b []byte, i int) (end int, escaped, ok bool) {
	i++ // opening quote
	for {
		i = plainRun(b, i)
		if i >= len(b) {
			return i, false, false
		}
		switch b[i] {
		case '"':
			return i + 1, escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return i, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return i, false, false
					}
				}
				i += 6
			default:
				return i, false, false
			}
		default: // a control character
			return i, false, false
		}
	}
}

// plainRun returns the index of the first byte of b at or after i that a
// string cannot hold as it is (a quote, a backslash, a control character),
// or len(b). It tests eight bytes at a time: most strings (keys, ids,
// course and block keys) are long runs of plain bytes.
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := notPlain(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && plainByte[b[i]] {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// notPlain sets the high bit of each byte of the little-endian word w that
// is a quote, a backslash or below 0x20 (the classic "has zero byte" and
// "has byte less than" tests). A byte above the lowest one so marked may be
// marked wrongly (a borrow), never one below it, so the lowest mark is
// exact.
func notPlain(w uint64) uint64 {
	q, s := w^(ones*'"'), w^(ones*'\\')
	return ((q-ones)&^q | (s-ones)&^s | (w-ones*0x20)&^w) & highs
}

// AppendSimple validates the string token that starts at b[i] (its opening
// quote) as String does, appends its value to dst and returns the index
// just past its closing quote: one pass where String and an unescape took
// two. Its loop goes byte by byte: the strings it unescapes (tracking logs'
// data) hold an escape every few bytes, where String's eight-byte test
// measured no faster.
// Bytes that are not valid UTF-8 are appended as they are (where
// encoding/json puts U+FFFD). It gives up (ok false) on a \u escape as on
// an invalid token: a caller that meets one takes a path that decodes it.
func AppendSimple(dst, b []byte, i int) (out []byte, end int, ok bool) {
	i++ // opening quote
	run := i
	for i < len(b) {
		c := b[i]
		if plainByte[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return append(dst, b[run:i]...), i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return dst, i, false
			}
			e := simpleEscape[b[i+1]]
			if e == 0 {
				return dst, i, false // \u, or not an escape
			}
			dst = append(append(dst, b[run:i]...), e)
			i += 2
			run = i
		default: // a control character
			return dst, i, false
		}
	}
	return dst, i, false
}

// simpleEscape maps the byte after a backslash to what the escape stands
// for, zero for \u and for what is not an escape.
var simpleEscape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (v *validator) number() bool {
	if v.b[v.i] == '-' {
		v.i++
	}
	switch {
	case v.i >= len(v.b):
		return false
	case v.b[v.i] == '0':
		v.i++
	case v.b[v.i] >= '1' && v.b[v.i] <= '9':
		v.digits()
	default:
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if v.digits() == 0 {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if v.digits() == 0 {
			return false
		}
	}
	return true
}

func (v *validator) digits() int {
	start := v.i
	for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i - start
}
