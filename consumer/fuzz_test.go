package consumer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/enrollstatus/enrollstatus/consumer"
)

// The labels a Decoded.Type may take: metrics carry them, so they must stay
// a small fixed set whatever the input.
var typeLabels = map[string]bool{
	consumer.TypeEnrollmentCreated: true, consumer.TypeEnrollmentChanged: true,
	consumer.TypeUnenrollmentComplete: true, consumer.TypeCatalogInfoChanged: true,
	consumer.TypeTrackingEvent: true, consumer.TypeCourse: true, consumer.TypeUserRetired: true,
	"other": true, "unknown": true, "tombstone": true, "oversized": true, "debezium": true,
	"debezium.student_courseenrollment": true, "debezium.completion_blockcompletion": true,
	"debezium.course_overviews_courseoverview": true, "debezium.auth_user": true, "debezium.other": true,
}

// checkContract decodes m and checks what every caller relies on: no panic,
// errors wrap ErrUndecodable, events are valid, a message without events
// says why, and the type label is bounded.
func checkContract(t *testing.T, dec *consumer.Decoder, m consumer.Message) {
	t.Helper()
	got, err := dec.Decode(m)
	if !typeLabels[got.Type] {
		t.Fatalf("type label %q is not in the bounded set", got.Type)
	}
	if err != nil {
		if !errors.Is(err, consumer.ErrUndecodable) {
			t.Fatalf("error does not wrap ErrUndecodable: %v", err)
		}
		return
	}
	if got.Ignored != "" && len(got.Events) > 0 {
		t.Fatalf("ignored (%s) with %d events", got.Ignored, len(got.Events))
	}
	if got.Ignored == "" && len(got.Events) == 0 {
		t.Fatal("no events and no reason")
	}
	for _, e := range got.Events {
		if err := e.Validate(); err != nil {
			t.Fatalf("invalid event %#v: %v", e, err)
		}
	}
}

// headerText and parseHeaders carry headers through the fuzzer as text, one
// "key=value" a line.
func headerText(hs []consumer.Header) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key + "=" + string(h.Value) + "\n")
	}
	return b.String()
}

func parseHeaders(s string) []consumer.Header {
	var hs []consumer.Header
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			hs = append(hs, consumer.Header{Key: k, Value: []byte(v)})
		}
	}
	return hs
}

// FuzzDecode feeds every format through the Decoder, seeded with every
// fixture's value and headers.
func FuzzDecode(f *testing.F) {
	fixtures := loadFixtures(f)
	for _, fx := range fixtures {
		m := fx.message(f)
		f.Add(m.Value, headerText(m.Headers))
	}
	dec := mustAvroDecoder(f, consumer.AvroOptions{})
	f.Fuzz(func(t *testing.T, value []byte, headers string) {
		checkContract(t, dec, consumer.Message{Value: value, Headers: parseHeaders(headers)})
	})
}

// FuzzAvro mutates event-bus records behind valid framing and headers, with
// the writer schemas resolved through a registry (schema ids 1 to 6) and
// without one, so that mutations reach the Avro decoding rather than the
// dispatch.
func FuzzAvro(f *testing.F) {
	fixtures := loadFixtures(f)
	for _, fx := range fixtures {
		if fx.Format != "eventbus" {
			continue
		}
		m := fx.message(f)
		ceType, _ := m.Header("ce_type")
		minor, _ := m.Header("ce_minorversion")
		f.Add(ceType, uint32(fx.SchemaID), minor, m.Value[5:], true)
		f.Add(ceType, uint32(fx.SchemaID), minor, m.Value[5:], false)
	}
	reg := MustRegistry(f, fixtureSchemas(f, fixtures))
	withRegistry := mustAvroDecoder(f, consumer.AvroOptions{RegistryURL: reg.URL})
	builtin := mustAvroDecoder(f, consumer.AvroOptions{})
	f.Fuzz(func(t *testing.T, ceType string, schemaID uint32, minor string, body []byte, registry bool) {
		m := eventBusMessage(ceType, schemaID%8, body, "id", "2026-11-01T10:00:00+00:00", minor)
		dec := builtin
		if registry {
			dec = withRegistry
		}
		checkContract(t, dec, m)
	})
}

// FuzzDebezium splices fuzzed column values (raw JSON) into change events of
// each table, with and without a schema envelope, so that mutations reach the
// reading of ids, times and booleans rather than the JSON syntax.
func FuzzDebezium(f *testing.F) {
	f.Add(uint8(0), "c", "7", "1793527200123456", "1", `"audit"`, "1793527200457", false)
	f.Add(uint8(0), "d", `"7"`, `"2026-11-03T16:00:00.654321Z"`, "true", `"honor"`, "null", true)
	f.Add(uint8(1), "u", "8", "1741964966535", "0", `"block-v1:x"`, "1793527200457", true)
	f.Add(uint8(2), "r", `"course-v1:A+B+C"`, "null", "false", `null`, "-1", false)
	f.Add(uint8(3), "d", "9", "0", "2", `"bob"`, "1793527200457", true)
	dec := consumer.NewDecoder(nil)
	f.Fuzz(func(t *testing.T, table uint8, op, id, created, flag, text, tsMs string, schema bool) {
		var row string
		var name string
		switch table % 5 {
		case 0:
			name = "student_courseenrollment"
			row = `{"id":1,"user_id":` + id + `,"course_id":"c","created":` + created + `,"is_active":` + flag + `,"mode":` + text + `}`
		case 1:
			name = "completion_blockcompletion"
			row = `{"id":1,"user_id":` + id + `,"course_key":"c","block_key":` + text + `,"created":` + created + `}`
		case 2:
			name = "course_overviews_courseoverview"
			row = `{"id":` + id + `,"display_name":` + text + `,"mobile_available":` + flag + `}`
		case 3:
			name = "auth_user"
			row = `{"id":` + id + `,"username":` + text + `}`
		default:
			name = text
			row = "{}"
		}
		v := dbzEvent(name, op, row, row, tsMs)
		if schema {
			v = dbzEnveloped(v, "int64", "io.debezium.time.MicroTimestamp")
		}
		checkContract(t, dec, consumer.Message{Value: v})
	})
}
