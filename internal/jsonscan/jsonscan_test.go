package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/enrollstatus/enrollstatus/internal/testcorpus"
)

// jsonValidCases are the grammar's corners: each must get encoding/json's
// answer.
var jsonValidCases = []string{
	``, ` `, `{}`, ` {} `, "\t[]\r\n", `[`, `]`, `{`, `}`, `{]`, `[}`, `[1,]`, `{"a":1,}`, `[,1]`,
	`{"a"}`, `{"a":}`, `{a:1}`, `{"a" : 1 , "b" : [ 1 , 2 ] }`, `{"a":1}{}`, `{} x`, `1 2`,
	`0`, `-0`, `-`, `01`, `-01`, `1.`, `.1`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e-10`, `1.5.5`,
	`+1`, `0x10`, `1_000`, `Infinity`, `NaN`,
	`true`, `false`, `null`, `tru`, `nul`, `truee`, `True`, `NULL`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`, `"\x41"`, `"\'"`,
	"\"a\x00b\"", "\"a\x1fb\"", "\"a\x7fb\"", "\"tab\there\"", "\"\xff\xfe\"", "\"é\"", `"abc`, `"\`, `"\u`,
	`[[[[]]]]`, `{"a":{"b":{"c":[1,{"d":null}]}}}`, `[1,[2,[3,[4]]]]`, `{"":""}`, `[""]`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	strings.Repeat("[", 20000),
}

func TestValidAgrees(t *testing.T) {
	cases := jsonValidCases
	for _, b := range corpus(t) {
		cases = append(cases, string(b))
		// Every prefix of a real message, and each with one byte changed.
		for i := 0; i < len(b); i += 7 {
			cases = append(cases, string(b[:i]))
			mut := []byte(string(b))
			mut[i] ^= 0x20
			cases = append(cases, string(mut))
		}
	}
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.80q) = %v, encoding/json.Valid says %v", c, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range jsonValidCases {
		if len(c) < 200 {
			f.Add([]byte(c))
		}
	}
	for _, b := range corpus(f)[:50] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	msgs := corpus(b)
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"encoding/json", json.Valid}, {"jsonscan.Valid", Valid}} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				m := msgs[n%len(msgs)]
				n++
				if !bc.valid(m) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// corpus is native JSON as the event generator and the fixtures of the real
// producers make it.
func corpus(t testing.TB) [][]byte {
	out, err := testcorpus.NativeJSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSkipDepth checks Skip's nesting bound and that it ends where the value
// does.
func TestSkipDepth(t *testing.T) {
	for _, tc := range []struct {
		in       string
		maxDepth int
		end      int
		ok       bool
	}{
		{`[[1]] tail`, 2, 5, true},
		{`[[1]]`, 1, 0, false},
		{`{"a":{"b":[]}},`, 3, 14, true},
		{`{"a":{"b":[]}}`, 2, 0, false},
		{`"x\u00e9" rest`, 0, 9, true},
		{`12.5e3,`, 0, 6, true},
		{` 1`, 5, 0, false},
	} {
		end, ok := Skip([]byte(tc.in), 0, tc.maxDepth)
		if ok != tc.ok || ok && end != tc.end {
			t.Errorf("Skip(%q, %d) = %d, %v; want %d, %v", tc.in, tc.maxDepth, end, ok, tc.end, tc.ok)
		}
	}
}

// checkAppendSimple holds AppendSimple to String and encoding/json: on the
// string token at the start of b it takes exactly what String takes that
// holds no \u escape, ends where String ends, and appends the value
// encoding/json decodes (after what dst held), when the token is valid
// UTF-8 (encoding/json puts U+FFFD for bytes that are not; AppendSimple
// keeps them, and its callers refuse them later).
func checkAppendSimple(t *testing.T, b []byte) {
	t.Helper()
	if len(b) == 0 || b[0] != '"' {
		return
	}
	end, _, valid := String(b, 0)
	simple := valid && !hasUnicodeEscape(b[:end])
	dst := []byte("kept:")
	out, gotEnd, ok := AppendSimple(dst, b, 0)
	if ok != simple {
		t.Fatalf("AppendSimple(%q) ok=%v, String valid=%v (simple %v)", b, ok, valid, simple)
	}
	if !ok {
		return
	}
	if !utf8.Valid(b[:end]) {
		return
	}
	var want string
	if err := json.Unmarshal(b[:end], &want); err != nil {
		t.Fatalf("%q: String took it, encoding/json did not: %v", b[:end], err)
	}
	if gotEnd != end || string(out) != "kept:"+want {
		t.Fatalf("AppendSimple(%q) = %q, end %d; want %q, end %d", b, out, gotEnd, "kept:"+want, end)
	}
}

func TestAppendSimple(t *testing.T) {
	for _, s := range []string{`""`, `"a"`, `"a\"b"`, `"\\\/\b\f\n\r\t"`, `"x\u0041"`, `"\x"`, `"a`, `"a\`,
		"\"a\x01\"", `"\"\"" tail`, `"é ü 日本"`, `"{\"course_id\":\"course-v1:X+Y+Z\"}"`, "\"\xff\"", `"\`} {
		checkAppendSimple(t, []byte(s))
	}
}

func FuzzAppendSimple(f *testing.F) {
	for _, s := range []string{`"a\"b"`, `"\n"`, `"x\u0041"`, `"\\"`, "\"\x1f\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAppendSimple(t, b) })
}

// hasUnicodeEscape reports whether a valid string token holds a \u escape.
func hasUnicodeEscape(tok []byte) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] == '\\' {
			if tok[i+1] == 'u' {
				return true
			}
			i++
		}
	}
	return false
}

// TestPlainRunFindsTheFirstSpecialByte holds plainRun's eight-byte test to
// the byte table: every byte value at every offset of a word and of the
// tail, alone and followed by every other value (a borrow in the word test
// marks bytes above a special one; the first must still be exact), from
// several starting offsets.
func TestPlainRunFindsTheFirstSpecialByte(t *testing.T) {
	byTable := func(b []byte, i int) int {
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		return i
	}
	b := make([]byte, 21)
	check := func() {
		t.Helper()
		for start := range 4 {
			if got, want := plainRun(b, start), byTable(b, start); got != want {
				t.Fatalf("plainRun(%q, %d) = %d, the byte table says %d", b, start, got, want)
			}
		}
	}
	fill := func() {
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
	}
	for c := range 256 {
		for p := range len(b) {
			fill()
			b[p] = byte(c)
			check()
			if p+1 < len(b) {
				for c2 := range 256 {
					b[p+1] = byte(c2)
					check()
				}
			}
		}
	}
	// Long plain runs ending at every length, and an empty input.
	for n := range 40 {
		s := []byte(strings.Repeat("é", n/2) + strings.Repeat("x", n%2) + `"`)
		if got := plainRun(s, 0); got != len(s)-1 {
			t.Fatalf("plainRun(%q) = %d, want %d", s, got, len(s)-1)
		}
	}
	if got := plainRun(nil, 0); got != 0 {
		t.Fatalf("plainRun(nil) = %d", got)
	}
}
