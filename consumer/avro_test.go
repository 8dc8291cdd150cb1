package consumer_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/projection"
)

// The event bus's records, as openedx-events' schemas lay them out, for
// encoding test messages with hamba/avro.

type wirePII struct {
	Username string `avro:"username"`
	Email    string `avro:"email"`
	Name     string `avro:"name"`
}

type wireUser struct {
	ID       int64   `avro:"id"`
	IsActive bool    `avro:"is_active"`
	PII      wirePII `avro:"pii"`
}

type wireCourse struct {
	CourseKey   string  `avro:"course_key"`
	DisplayName string  `avro:"display_name"`
	Start       *string `avro:"start"`
	End         *string `avro:"end"`
}

type wireEnrollment struct {
	Enrollment struct {
		User         wireUser   `avro:"user"`
		Course       wireCourse `avro:"course"`
		Mode         string     `avro:"mode"`
		IsActive     bool       `avro:"is_active"`
		CreationDate string     `avro:"creation_date"`
		CreatedBy    *wireUser  `avro:"created_by"`
	} `avro:"enrollment"`
}

type wireCatalog struct {
	CatalogInfo struct {
		CourseKey    string `avro:"course_key"`
		Name         string `avro:"name"`
		ScheduleData struct {
			Start           string  `avro:"start"`
			Pacing          string  `avro:"pacing"`
			End             *string `avro:"end"`
			EnrollmentStart *string `avro:"enrollment_start"`
			EnrollmentEnd   *string `avro:"enrollment_end"`
		} `avro:"schedule_data"`
		Hidden         bool `avro:"hidden"`
		InvitationOnly bool `avro:"invitation_only"`
	} `avro:"catalog_info"`
}

type wireTracking struct {
	TrackingLog struct {
		Name      string `avro:"name"`
		Timestamp string `avro:"timestamp"`
		Data      string `avro:"data"`
		Context   string `avro:"context"`
	} `avro:"tracking_log"`
}

// The schema ids the fixtures' registry gave each type.
var fixtureSchemaIDs = map[string]uint32{
	consumer.TypeEnrollmentCreated:    1,
	consumer.TypeEnrollmentChanged:    2,
	consumer.TypeUnenrollmentComplete: 3,
	consumer.TypeCatalogInfoChanged:   4,
	consumer.TypeTrackingEvent:        5,
}

// eventBus encodes messages as edx-event-bus-kafka does, with the built-in
// schemas: Confluent framing, Avro binary, ce_* headers.
type eventBus struct {
	schemas map[string]avro.Schema
}

func newEventBus(t testing.TB) *eventBus {
	t.Helper()
	b := &eventBus{schemas: map[string]avro.Schema{}}
	for ceType := range fixtureSchemaIDs {
		text, err := os.ReadFile(filepath.Join("avroschemas", ceType+".avsc"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		b.schemas[ceType] = s
	}
	return b
}

// message frames record v of ceType with the fixtures' schema id and the
// producer's headers.
func (b *eventBus) message(t testing.TB, ceType, id string, at time.Time, v any) consumer.Message {
	t.Helper()
	body, err := avro.Marshal(b.schemas[ceType], v)
	if err != nil {
		t.Fatalf("encode %s: %v", ceType, err)
	}
	return eventBusMessage(ceType, fixtureSchemaIDs[ceType], body, id, pyISO(at), "0")
}

func eventBusMessage(ceType string, schemaID uint32, body []byte, id, ceTime, minor string) consumer.Message {
	value := binary.BigEndian.AppendUint32([]byte{0}, schemaID)
	value = append(value, body...)
	h := func(k, v string) consumer.Header { return consumer.Header{Key: k, Value: []byte(v)} }
	return consumer.Message{Value: value, Headers: []consumer.Header{
		h("ce_specversion", "1.0"), h("content-type", "application/avro"),
		h("ce_datacontenttype", "application/avro"), h("ce_type", ceType), h("ce_id", id),
		h("ce_source", "openedx/lms/web"), h("ce_time", ceTime), h("ce_minorversion", minor),
		h("sourcehost", "lms.test"), h("sourcelib", "11.2.0"),
	}}
}

// pyISO formats t as Python's datetime.isoformat() does for an aware UTC
// time: microseconds, or no fraction at all when they are zero.
func pyISO(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

// withHeader returns m with header k set to v, or removed when v is nil.
func withHeader(m consumer.Message, k string, v *string) consumer.Message {
	var hs []consumer.Header
	for _, h := range m.Headers {
		if h.Key != k {
			hs = append(hs, h)
		}
	}
	if v != nil {
		hs = append(hs, consumer.Header{Key: k, Value: []byte(*v)})
	}
	m.Headers = hs
	return m
}

func ptr[T any](v T) *T { return &v }

func fixtureNamed(t testing.TB, fixtures []fixture, name string) fixture {
	t.Helper()
	for _, f := range fixtures {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s", name)
	return fixture{}
}

func mustAvroDecoder(t testing.TB, opts consumer.AvroOptions) *consumer.Decoder {
	t.Helper()
	a, err := consumer.NewAvroDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return consumer.NewDecoder(a)
}

// TestSchemaEvolution: a record of a newer minor version decodes with and
// without a registry; bytes after a record are poison unless ce_minorversion
// says the writer is newer and no registry can tell exactly.
func TestSchemaEvolution(t *testing.T) {
	fixtures := loadFixtures(t)
	evolved := fixtureNamed(t, fixtures, "enrollment_created_evolved_minor1")
	evolvedNull := fixtureNamed(t, fixtures, "enrollment_created_evolved_minor1_null")
	basic := fixtureNamed(t, fixtures, "enrollment_created_basic")

	reg := MustRegistry(t, fixtureSchemas(t, fixtures))
	down := MustRegistry(t, fixtureSchemas(t, fixtures))
	down.down.Store(true)
	modes := map[string]*consumer.Decoder{
		"builtin":       mustAvroDecoder(t, consumer.AvroOptions{}),
		"registry":      mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: reg.URL}),
		"registry down": mustAvroDecoder(t, consumer.AvroOptions{RegistryURL: down.URL}),
	}
	trailing := func(f fixture, extra ...byte) consumer.Message {
		m := f.message(t)
		m.Value = append(append([]byte(nil), m.Value...), extra...)
		return m
	}
	truncated := func(f fixture, n int) consumer.Message {
		m := f.message(t)
		m.Value = m.Value[:len(m.Value)-n]
		return m
	}
	minor := func(m consumer.Message, v *string) consumer.Message { return withHeader(m, "ce_minorversion", v) }

	tests := []struct {
		name string
		msg  consumer.Message
		want map[string]bool // mode -> decodes; else poison
		f    fixture         // expectation when it decodes
	}{
		{"evolved record, minor 1", evolved.message(t),
			map[string]bool{"builtin": true, "registry": true, "registry down": true}, evolved},
		{"evolved record, null field, minor 1", evolvedNull.message(t),
			map[string]bool{"builtin": true, "registry": true, "registry down": true}, evolvedNull},
		// The registry knows schema 6 exactly: the header does not matter.
		{"evolved record, minor 0", minor(evolved.message(t), ptr("0")),
			map[string]bool{"registry": true}, evolved},
		{"evolved record, no minor header", minor(evolved.message(t), nil),
			map[string]bool{"registry": true}, evolved},
		{"evolved record, minor not a number", minor(evolved.message(t), ptr("one")),
			map[string]bool{}, evolved},
		{"known record, trailing byte, minor 0", trailing(basic, 0),
			map[string]bool{}, basic},
		{"known record, trailing bytes, no minor header", minor(trailing(basic, 2, 'x'), nil),
			map[string]bool{}, basic},
		// Schema 1 is the built-in one: with a registry, nothing may follow.
		{"known record, trailing byte, minor 1", minor(trailing(basic, 0), ptr("1")),
			map[string]bool{"builtin": true, "registry down": true}, basic},
		// Without the writer schema, what follows the known fields cannot be
		// checked: only the registry sees that the new field is cut short.
		{"evolved record, new field cut short", truncated(evolved, 3),
			map[string]bool{"builtin": true, "registry down": true}, evolved},
		{"evolved record cut into the known fields", truncated(evolved, 12),
			map[string]bool{}, evolved},
		{"known record cut short, minor 1", minor(truncated(basic, 3), ptr("1")),
			map[string]bool{}, basic},
	}
	for _, tt := range tests {
		for mode, dec := range modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				got, err := dec.Decode(tt.msg)
				if !tt.want[mode] {
					if !errors.Is(err, consumer.ErrUndecodable) {
						t.Fatalf("want poison, got %v (%d events)", err, len(got.Events))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				checkDecoded(t, tt.f, got)
			})
		}
	}
	if reg.requests.Load() == 0 {
		t.Error("the registry was never asked")
	}
}

// TestAvroHeaders covers what the headers decide: the type, the event time,
// and what is not Avro of a supported type.
func TestAvroHeaders(t *testing.T) {
	fixtures := loadFixtures(t)
	basic := fixtureNamed(t, fixtures, "enrollment_created_basic")
	tracking := fixtureNamed(t, fixtures, "tracking_completion_created")
	dec := mustAvroDecoder(t, consumer.AvroOptions{})

	tests := []struct {
		name        string
		msg         consumer.Message
		wantErr     bool
		wantIgnored bool
		wantType    string
	}{
		{"no ce_type", withHeader(basic.message(t), "ce_type", nil), true, false, "unknown"},
		{"empty ce_type", withHeader(basic.message(t), "ce_type", ptr("")), true, false, "unknown"},
		{"unknown type", withHeader(basic.message(t), "ce_type", ptr("org.openedx.learning.certificate.created.v1")),
			false, true, "other"},
		{"enrollstatus type as Avro", withHeader(basic.message(t), "ce_type", ptr(consumer.TypeUserRetired)),
			true, false, consumer.TypeUserRetired},
		{"another known type's bytes", withHeader(basic.message(t), "ce_type", ptr(consumer.TypeCatalogInfoChanged)),
			true, false, consumer.TypeCatalogInfoChanged},
		{"no ce_time", withHeader(basic.message(t), "ce_time", nil), true, false, consumer.TypeEnrollmentCreated},
		{"bad ce_time", withHeader(basic.message(t), "ce_time", ptr("yesterday")), true, false, consumer.TypeEnrollmentCreated},
		{"frame only", consumer.Message{Value: []byte{0, 0, 0, 1}, Headers: basic.message(t).Headers},
			true, false, consumer.TypeEnrollmentCreated},
		{"empty record", consumer.Message{Value: []byte{0, 0, 0, 0, 1}, Headers: basic.message(t).Headers},
			true, false, consumer.TypeEnrollmentCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(tt.msg)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, consumer.ErrUndecodable)) {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantIgnored != (got.Ignored != "") || (tt.wantIgnored && len(got.Events) > 0) {
				t.Fatalf("ignored %q with %d events, want ignored %v", got.Ignored, len(got.Events), tt.wantIgnored)
			}
			if got.Type != tt.wantType {
				t.Fatalf("type %q, want %q", got.Type, tt.wantType)
			}
		})
	}

	// Without ce_time, a completion takes the tracking log's own timestamp.
	got, err := dec.Decode(withHeader(tracking.message(t), "ce_time", nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Events[0].(projection.Completion); !c.Time.Equal(time.Date(2026, 11, 1, 10, 0, 0, 130001000, time.UTC)) {
		t.Fatalf("completion time %v, want the tracking log's timestamp", c.Time)
	}

	// Avro without an Avro decoder is poison, not a panic.
	if _, err := consumer.NewDecoder(nil).Decode(basic.message(t)); !errors.Is(err, consumer.ErrUndecodable) {
		t.Fatalf("no Avro decoder: %v", err)
	}
}

// TestAvroRoundTrip encodes records with hamba/avro and the built-in schemas
// (created_by set, unions both ways, unicode) and decodes them back.
func TestAvroRoundTrip(t *testing.T) {
	bus := newEventBus(t)
	dec := mustAvroDecoder(t, consumer.AvroOptions{})
	at := time.Date(2026, 11, 20, 8, 30, 0, 123456000, time.UTC)
	created := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

	var r wireEnrollment
	r.Enrollment.User = wireUser{ID: 1 << 40, IsActive: true, PII: wirePII{Username: "Σίσυφος", Email: "s@test"}}
	r.Enrollment.Course = wireCourse{CourseKey: "course-v1:Ø+Ж+1", DisplayName: "名前", End: ptr("2027-01-01T00:00:00+00:00")}
	r.Enrollment.Mode, r.Enrollment.IsActive = "professional", true
	r.Enrollment.CreationDate = "2026-10-01T02:00:00+02:00"
	r.Enrollment.CreatedBy = &wireUser{ID: 3, PII: wirePII{Username: "staff"}}

	var c wireCatalog
	c.CatalogInfo.CourseKey, c.CatalogInfo.Name = "course-v1:A+B+C", ""
	c.CatalogInfo.ScheduleData.Start = "2026-01-01T00:00:00+00:00"

	var tr wireTracking
	tr.TrackingLog.Name = consumer.CompletionEventName
	tr.TrackingLog.Timestamp = pyISO(at)
	tr.TrackingLog.Data = `{"user_id": "42", "course_id": "course-v1:A+B+C", "block_id": "b\u00e9", "created": "2026-10-01T00:00:00+00:00"}`
	tr.TrackingLog.Context = "{}"

	tests := []struct {
		ceType string
		v      any
		want   projection.Event
	}{
		{consumer.TypeEnrollmentChanged, r, projection.Enrollment{UserID: 1 << 40, Username: "Σίσυφος",
			CourseID: "course-v1:Ø+Ж+1", CourseName: ptr("名前"), Mode: "professional", Active: true, Created: created, Time: at}},
		{consumer.TypeUnenrollmentComplete, r, projection.Enrollment{UserID: 1 << 40, Username: "Σίσυφος",
			CourseID: "course-v1:Ø+Ж+1", CourseName: ptr("名前"), Mode: "professional", Active: false, Created: created, Time: at}},
		// A catalog name is the course's: "" stays a name, unlike an enrollment's.
		{consumer.TypeCatalogInfoChanged, c, projection.CourseInfo{CourseID: "course-v1:A+B+C", Name: ptr(""), Time: at}},
		{consumer.TypeTrackingEvent, tr, projection.Completion{UserID: 42, CourseID: "course-v1:A+B+C", BlockID: "bé",
			Created: created, Time: at}},
	}
	for _, tt := range tests {
		t.Run(tt.ceType, func(t *testing.T) {
			got, err := dec.Decode(bus.message(t, tt.ceType, "id-1", at, tt.v))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Events) != 1 {
				t.Fatalf("%d events", len(got.Events))
			}
			want := expectOf(tt.want)
			for k, v := range want {
				if tm, ok := v.(time.Time); ok {
					want[k] = tm.Format(time.RFC3339Nano)
				}
			}
			if err := sameEvent(want, got.Events[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkAvroDecode decodes event-bus fixtures through the Decoder, with
// the built-in schemas and through a (cached) registry.
func BenchmarkAvroDecode(b *testing.B) {
	fixtures := loadFixtures(b)
	reg := MustRegistry(b, fixtureSchemas(b, fixtures))
	modes := []struct {
		name string
		dec  *consumer.Decoder
	}{
		{"builtin", mustAvroDecoder(b, consumer.AvroOptions{})},
		{"registry", mustAvroDecoder(b, consumer.AvroOptions{RegistryURL: reg.URL})},
	}
	for _, mode := range modes {
		for _, name := range []string{"enrollment_created_basic", "enrollment_created_evolved_minor1",
			"catalog_info_changed_basic", "tracking_completion_created", "tracking_video_played_ignored"} {
			m := fixtureNamed(b, fixtures, name).message(b)
			b.Run(mode.name+"/"+strings.TrimSuffix(name, "_basic"), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(m.Value)))
				for b.Loop() {
					if _, err := mode.dec.Decode(m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
