package consumer_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/consumer"
)

// hostile returns messages a careless or malicious producer could send.
func hostile() map[string][]byte {
	enrollment := func(userID, course, created, at string) []byte {
		return []byte(`{"specversion":"1.0","type":"org.openedx.learning.course.enrollment.created.v1","id":"h","time":"` + at +
			`","data":{"enrollment":{"user":{"id":` + userID + `,"is_active":true,"pii":{"username":"u"}},"course":{"course_key":"` +
			course + `","display_name":"n"},"mode":"audit","is_active":true,"creation_date":"` + created + `"}}}`)
	}
	const ok = "2026-11-01T10:00:00Z"
	return map[string][]byte{
		"oversized":            append([]byte(`{"specversion":"1.0","type":"x","data":"`), append([]byte(strings.Repeat("a", consumer.MaxMessageBytes)), `"}`...)...),
		"deeply nested":        []byte(`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"` + ok + `","data":` + strings.Repeat(`{"a":`, 100000) + `1` + strings.Repeat(`}`, 100000) + `}`),
		"huge course id":       enrollment("1", strings.Repeat("c", 100000), ok, ok),
		"invalid utf-8":        enrollment("1", "course-v1:\xff\xfe+X+Y", ok, ok),
		"NUL in course id":     enrollment("1", `course-v1:A\u0000B`, ok, ok),
		"year 0":               enrollment("1", "course-v1:A+B+C", "0000-01-01T00:00:00Z", ok),
		"year 10000":           enrollment("1", "course-v1:A+B+C", "10000-01-01T00:00:00Z", ok),
		"negative user id":     enrollment("-5", "course-v1:A+B+C", ok, ok),
		"user id overflow":     enrollment("99999999999999999999999", "course-v1:A+B+C", ok, ok),
		"float user id":        enrollment("1.5", "course-v1:A+B+C", ok, ok),
		"no event time":        []byte(`{"specversion":"1.0","type":"enrollstatus.course.v1","data":{"course_key":"k"}}`),
		"null data":            []byte(`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"` + ok + `","data":null}`),
		"wrong types":          []byte(`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"` + ok + `","data":{"course_key":7,"mobile_available":"yes"}}`),
		"truncated":            []byte(`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"` + ok + `","data":{"course_key":"k"`),
		"trailing NUL":         append(enrollment("1", "course-v1:A+B+C", ok, ok), 0),
		"no type":              []byte(`{"specversion":"1.0","id":"h","time":"` + ok + `","data":{"course_key":"k"}}`),
		"array":                []byte(`[1,2,3]`),
		"binary":               {0x01, 0x02, 0xff},
		"avro frame too short": {0x00, 0x00, 0x01},
		"avro frame no type":   {0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03},
		"completion of a garbage string": []byte(`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","time":"` + ok +
			`","data":{"tracking_log":{"name":"edx.completion.block_completion.changed","timestamp":"` + ok + `","data":"{not json","context":"{}"}}}`),
	}
}

// TestHostileMessages: every hostile message is refused with an error that
// wraps ErrUndecodable (so the poison policy takes it), without a panic, and
// within memory bounds.
func TestHostileMessages(t *testing.T) {
	avro, err := consumer.NewAvroDecoder(consumer.AvroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dec := consumer.NewDecoder(avro)
	for name, value := range hostile() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d, err := dec.Decode(consumer.Message{Topic: "t", Value: value})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("decoded into %+v, want an undecodable error", d)
			}
			if !errors.Is(err, consumer.ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
				t.Fatalf("decoding allocated %d MiB", grown>>20)
			}
			if d.Type == "" {
				t.Fatal("no type label for the metrics")
			}
			if len(d.Type) > 100 {
				t.Fatalf("type label of %d bytes: unbounded metric cardinality", len(d.Type))
			}
		})
	}
}

// TestInvalidJSONSaysWhere: the error of a message that is not JSON says
// where it goes wrong, for the operator who reads it in the log or in the
// dead-letter topic's headers.
func TestInvalidJSONSaysWhere(t *testing.T) {
	dec := consumer.NewDecoder(nil)
	for value, want := range map[string]string{
		`{"specversion":"1.0","type":"enrollstatus.course.v1","data":{`: "invalid JSON at byte 61: unexpected end of JSON input",
		`{"specversion":"1.0"}` + "\x00":                                "invalid JSON at byte 22: invalid character '\\x00' after top-level value",
		` {"a" 1}`:                                                      "invalid JSON at byte 7: invalid character '1' after object key",
	} {
		_, err := dec.Decode(consumer.Message{Topic: "t", Value: []byte(value)})
		if !errors.Is(err, consumer.ErrUndecodable) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%q: error %v, want one ending %q", value, err, want)
		}
	}
}

// TestUnknownTypesAreIgnoredNotPoison: an unknown CloudEvents type is
// skipped and counted, never fatal, and its label does not explode.
func TestUnknownTypesAreIgnoredNotPoison(t *testing.T) {
	dec := consumer.NewDecoder(nil)
	for i := range 3 {
		typ := fmt.Sprintf("org.example.made.up.%d.v1", i)
		d, err := dec.Decode(consumer.Message{Value: []byte(`{"specversion":"1.0","type":"` + typ + `","id":"1","time":"2026-01-01T00:00:00Z","data":{}}`)})
		if err != nil || len(d.Events) != 0 || d.Ignored == "" {
			t.Fatalf("unknown type: %+v, %v; want ignored", d, err)
		}
		if d.Type != "other" {
			t.Fatalf("type label %q, want other", d.Type)
		}
	}
	// Whatever the rest holds: CloudEvents' data is optional, and an
	// unknown type's time or specversion is none of the projection's
	// business.
	for _, value := range []string{
		`{"specversion":"1.0","type":"org.example.x","id":"1","source":"s"}`,
		`{"specversion":"1.0","type":"org.example.x","id":"1","data":null}`,
		`{"specversion":"1.0","type":"org.example.x","id":"1","data_base64":"AAEC"}`,
		`{"specversion":"1.0","type":"org.example.x","id":"1","time":"yesterday","data":{}}`,
		`{"specversion":"1.0","type":"org.example.x","id":"1","time":1700000000,"data":{}}`,
		`{"specversion":"0.3","type":"org.example.x","id":"1","data":{}}`,
		`{"specversion":"1.0","type":"org.example.x","id":7,"source":["s"],"data":"text"}`,
	} {
		d, err := dec.Decode(consumer.Message{Value: []byte(value)})
		if err != nil || len(d.Events) != 0 || !strings.HasPrefix(d.Ignored, "unknown type") || d.Type != "other" {
			t.Errorf("%s: %+v, %v; want ignored as an unknown type", value, d, err)
		}
	}
}

// TestOtherTrackingEventsAreIgnored: a tracking event of another name than a
// block completion is ignored whatever its timestamp and data hold: it
// shares the completions' partition, so under the fail policy one of them
// would stop every completion.
func TestOtherTrackingEventsAreIgnored(t *testing.T) {
	dec := consumer.NewDecoder(nil)
	for _, log := range []string{
		`{"name":"problem_check","timestamp":1700000000,"data":"{}"}`,
		`{"name":"problem_check","timestamp":"last tuesday","data":"{}"}`,
		`{"name":"problem_check","timestamp":null,"data":{"answers":[1,2]}}`,
		`{"name":"problem_check","data":42}`,
		`{"name":"edx.video.played","timestamp":{"t":1},"data":"not json","context":"{}"}`,
	} {
		for _, at := range []string{`"time":"2026-11-01T10:00:00Z",`, ``} {
			value := `{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","id":"1",` + at + `"data":{"tracking_log":` + log + `}}`
			d, err := dec.Decode(consumer.Message{Value: []byte(value)})
			if err != nil || len(d.Events) != 0 || !strings.HasPrefix(d.Ignored, "tracking event") {
				t.Errorf("%s: %+v, %v; want ignored", value, d, err)
			}
		}
	}
	// A completion's timestamp is still read, and refused when it is not a time.
	value := `{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","id":"1","data":{"tracking_log":` +
		`{"name":"edx.completion.block_completion.changed","timestamp":"last tuesday","data":"{\"user_id\":1,\"course_id\":\"c\",\"block_id\":\"b\",\"created\":\"2026-11-01T10:00:00Z\"}"}}}`
	if _, err := dec.Decode(consumer.Message{Value: []byte(value)}); !errors.Is(err, consumer.ErrUndecodable) {
		t.Errorf("a completion with an unparseable timestamp: %v, want undecodable", err)
	}
}
