package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/projection"
)

// jsonString is the reference: encoding/json without HTML escaping writes
// what DRF writes (it too escapes U+2028 and U+2029, and writes invalid
// UTF-8 as \ufffd).
func jsonString(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`<b>&amp;</b>`, `"<b>&amp;</b>"`},
		{`"\`, `"\"\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"Курс 😀 Ω", `"Курс 😀 Ω"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // a UTF-16 surrogate is not UTF-8
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %s; want %s", tt.in, got, tt.want)
		}
		if ref := jsonString(t, tt.in); ref != tt.want {
			t.Errorf("encoding/json(%q) = %s; the table says %s", tt.in, ref, tt.want)
		}
	}
}

// TestPlainPrefix puts every byte value at every position of a run of
// plain bytes, across the eight-byte words plainPrefix reads.
func TestPlainPrefix(t *testing.T) {
	for c := range 256 {
		plain := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
		for n := 1; n <= 19; n++ {
			for at := range n {
				b := bytes.Repeat([]byte{'a'}, n)
				b[at] = byte(c)
				// A plain byte before it must not hide it, nor the one after.
				want := at
				if plain {
					want = n
				}
				if got := plainPrefix(string(b)); got != want {
					t.Fatalf("plainPrefix(%q) = %d; want %d", b, got, want)
				}
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "<&>", "\u2028", "\xff", "\x00\"\\", "😀", "\xed\xa0\x80",
		"course-v1:edX+DemoX+Demo_Course", "Économie & société \"2025\"\n", "0123456\x7f\x80abcdefgh\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		if want := jsonString(t, s); string(got) != want {
			t.Fatalf("appendString(%q) = %s; encoding/json says %s", s, got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("appendString(%q) = %s is not JSON", s, got)
		}
	})
}

func TestAppendStatuses(t *testing.T) {
	got := string(appendStatuses(nil, nil))
	if got != "[]" {
		t.Errorf("no statuses = %s", got)
	}
	// The reference: the JSON structs DRF's serializer would give.
	type entry struct {
		CourseID       string  `json:"course_id"`
		CourseName     *string `json:"course_name"`
		RecentlyActive bool    `json:"recently_active"`
	}
	statuses := benchStatuses()
	statuses[3].HasCourseName = false
	var ref []entry
	for _, s := range statuses {
		e := entry{CourseID: s.CourseID, RecentlyActive: s.RecentlyActive}
		if s.HasCourseName {
			e.CourseName = &s.CourseName
		}
		ref = append(ref, e)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ref); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(b.String(), "\n")
	if got := string(appendStatuses(nil, statuses)); got != want {
		t.Fatalf("appendStatuses =\n%s\nwant\n%s", got, want)
	}
}

// benchStatuses is a typical answer: ten courses, some recently active,
// one name with non-ASCII characters.
func benchStatuses() []projection.Status {
	out := make([]projection.Status, 10)
	for i := range out {
		out[i] = projection.Status{
			CourseID:       "course-v1:edX+Course" + string(rune('A'+i)) + "+2025_T1",
			CourseName:     "Introduction to Course " + string(rune('A'+i)),
			HasCourseName:  true,
			RecentlyActive: i%3 == 0,
		}
	}
	out[7].CourseName = "Économie & société <2025>"
	return out
}

// BenchmarkEncode encodes a ten-course answer into a pooled buffer, as the
// handler does: no allocation.
func BenchmarkEncode(b *testing.B) {
	statuses := benchStatuses()
	b.ReportAllocs()
	for b.Loop() {
		buf := getBody()
		*buf = appendStatuses(*buf, statuses)
		putBody(buf)
	}
}

// BenchmarkEncodeJSON is encoding/json on the same answer, for comparison.
func BenchmarkEncodeJSON(b *testing.B) {
	type entry struct {
		CourseID       string  `json:"course_id"`
		CourseName     *string `json:"course_name"`
		RecentlyActive bool    `json:"recently_active"`
	}
	statuses := benchStatuses()
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		ref := make([]entry, len(statuses))
		for i, s := range statuses {
			ref[i] = entry{CourseID: s.CourseID, CourseName: &statuses[i].CourseName, RecentlyActive: s.RecentlyActive}
		}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(ref)
	}
}

func TestMatchStatus(t *testing.T) {
	tests := []struct {
		path         string
		user         string
		match, slash bool
	}{
		{"/api/mobile/v4/users/a/enrollments_status/", "a", true, false},
		{"/api/mobile/v4/users/a/enrollments_status/x/y", "a", true, false},
		{"/api/mobile/v4/users/a/enrollments_status", "a", false, true},
		{"/api/mobile/v4/users/a/enrollments_statu", "", false, false},
		{"/api/mobile/v4/users/a/b/enrollments_status/", "", false, false},
		{"/api/mobile/v4/users/a", "", false, false},
		{"/api/mobile/v4/users/", "", false, false},
		{"/api/mobile/v4/users", "", false, false},
		{"/api/mobile/v4", "", false, false},
		{"/api/mobile/", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		user, match, slash := matchStatus(tt.path)
		if match != tt.match || slash != tt.slash || (match && user != tt.user) {
			t.Errorf("matchStatus(%q) = %q %v %v", tt.path, user, match, slash)
		}
	}
}

func TestEscapeURIPath(t *testing.T) {
	tests := map[string]string{
		"/a b/":                "/a%20b/",
		"/José":                "/Jos%C3%A9",
		"/a+b@c.d-e_f~g!h*'()": "/a+b@c.d-e_f~g!h*'()",
		"/:&$,;=?#%\"<>":       "/:&$,%3B%3D%3F%23%25%22%3C%3E",
	}
	for in, want := range tests {
		if got := escapeURIPath(in); got != want {
			t.Errorf("escapeURIPath(%q) = %q; want %q", in, got, want)
		}
	}
}
