package consumer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/projection"
)

// dbzEvent writes a bare Debezium change event (schemas.enable=false).
func dbzEvent(table, op, before, after string, tsMs string) []byte {
	if before == "" {
		before = "null"
	}
	if after == "" {
		after = "null"
	}
	return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"ts_ms":1,"connector":"mysql","db":"edxapp","table":%q},"op":%q,"ts_ms":%s}`,
		before, after, table, op, tsMs)
}

// dbzEnveloped wraps a change event in a JsonConverter envelope whose row
// schema gives created the semantic type createdType.
func dbzEnveloped(payload []byte, createdType, createdName string) []byte {
	row := fmt.Sprintf(`{"type":"struct","optional":true,"fields":[{"type":"int32","field":"user_id"},{"type":"string","field":"course_id"},{"type":%q,"name":%q,"field":"created"},{"type":"int16","field":"is_active"},{"type":"string","field":"mode"}],"field":"%%s"}`,
		createdType, createdName)
	schema := fmt.Sprintf(`{"type":"struct","fields":[%s,%s,{"type":"string","field":"op"}]}`,
		fmt.Sprintf(row, "before"), fmt.Sprintf(row, "after"))
	return fmt.Appendf(nil, `{"schema":%s,"payload":%s}`, schema, payload)
}

func TestDebeziumTimes(t *testing.T) {
	day := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	micro := time.Date(2026, 11, 3, 15, 45, 10, 123456000, time.UTC)
	old := time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC)
	row := func(created string) string {
		return `{"user_id":7,"course_id":"c","created":` + created + `,"is_active":1,"mode":"audit"}`
	}
	tests := []struct {
		name    string
		value   []byte
		want    time.Time
		wantErr bool
	}{
		// Without a schema: by magnitude.
		{"days", dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(day.Unix()/86400)), "1"), day, false},
		{"milliseconds", dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixMilli())), "1"), micro.Truncate(time.Millisecond), false},
		{"microseconds", dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixMicro())), "1"), micro, false},
		{"nanoseconds", dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixNano())), "1"), micro, false},
		{"ISO string", dbzEvent("student_courseenrollment", "c", "", row(`"2026-11-03T16:45:10.123456+01:00"`), "1"), micro, false},
		{"before 1970", dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(old.UnixMicro())), "1"), old, false},
		{"float", dbzEvent("student_courseenrollment", "c", "", row("1.5e15"), "1"), time.Time{}, true},
		{"null", dbzEvent("student_courseenrollment", "c", "", row("null"), "1"), time.Time{}, true},
		// With a schema, its semantic type decides, whatever the magnitude.
		{"Timestamp", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixMilli())), "1"),
			"int64", "io.debezium.time.Timestamp"), micro.Truncate(time.Millisecond), false},
		{"MicroTimestamp small", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixMilli())), "1"),
			"int64", "io.debezium.time.MicroTimestamp"), time.UnixMicro(micro.UnixMilli()).UTC(), false},
		{"NanoTimestamp", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixNano())), "1"),
			"int64", "io.debezium.time.NanoTimestamp"), micro, false},
		{"ZonedTimestamp", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(`"2026-11-03T15:45:10.123456Z"`), "1"),
			"string", "io.debezium.time.ZonedTimestamp"), micro, false},
		{"Date", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(day.Unix()/86400)), "1"),
			"int32", "io.debezium.time.Date"), day, false},
		{"Connect Timestamp", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row(fmt.Sprint(micro.UnixMilli())), "1"),
			"int64", "org.apache.kafka.connect.data.Timestamp"), micro.Truncate(time.Millisecond), false},
		{"Date out of range", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row("99999999999"), "1"),
			"int32", "io.debezium.time.Date"), time.Time{}, true},
		{"time of day", dbzEnveloped(dbzEvent("student_courseenrollment", "c", "", row("1000"), "1"),
			"int64", "io.debezium.time.MicroTime"), time.Time{}, true},
	}
	dec := consumer.NewDecoder(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(consumer.Message{Value: tt.value})
			if tt.wantErr {
				if !errors.Is(err, consumer.ErrUndecodable) {
					t.Fatalf("err %v, want poison", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e := got.Events[0].(projection.Enrollment)
			if !e.Created.Equal(tt.want) || e.Created.Location() != time.UTC {
				t.Fatalf("created %v, want %v", e.Created, tt.want)
			}
		})
	}
}

func TestDebeziumChanges(t *testing.T) {
	enrollment := `{"id":1,"user_id":7,"course_id":"c","created":1793527200123456,"is_active":%s,"mode":"audit"}`
	user := `{"id":%s,"username":%s}`
	course := `{"id":"c","display_name":%s,"mobile_available":%s}`
	at := time.UnixMilli(1793527200457).UTC()
	created := time.UnixMicro(1793527200123456).UTC()
	tests := []struct {
		name        string
		value       string
		want        projection.Event // nil: ignored or poison
		wantIgnored bool
		wantType    string
	}{
		{"insert active 1", string(dbzEvent("student_courseenrollment", "c", "", fmt.Sprintf(enrollment, "1"), "1793527200457")),
			projection.Enrollment{UserID: 7, CourseID: "c", Mode: "audit", Active: true, Created: created, Time: at}, false, "debezium.student_courseenrollment"},
		{"update active false", string(dbzEvent("student_courseenrollment", "u", "", fmt.Sprintf(enrollment, "false"), "1793527200457")),
			projection.Enrollment{UserID: 7, CourseID: "c", Mode: "audit", Active: false, Created: created, Time: at}, false, "debezium.student_courseenrollment"},
		{"active 2", string(dbzEvent("student_courseenrollment", "c", "", fmt.Sprintf(enrollment, "2"), "1")), nil, false, "debezium.student_courseenrollment"},
		{"active null", string(dbzEvent("student_courseenrollment", "c", "", fmt.Sprintf(enrollment, "null"), "1")), nil, false, "debezium.student_courseenrollment"},
		{"delete: the before image, inactive", string(dbzEvent("student_courseenrollment", "d", fmt.Sprintf(enrollment, "true"), "", "1793527200457")),
			projection.Enrollment{UserID: 7, CourseID: "c", Mode: "audit", Active: false, Created: created, Time: at}, false, "debezium.student_courseenrollment"},
		{"delete without a before image", string(dbzEvent("student_courseenrollment", "d", "", "", "1")), nil, false, "debezium.student_courseenrollment"},
		{"insert without an after image", string(dbzEvent("student_courseenrollment", "c", "", "", "1")), nil, false, "debezium.student_courseenrollment"},
		{"user id as a string", string(dbzEvent("auth_user", "r", "", fmt.Sprintf(user, `"7"`, `"alice"`), "1793527200457")),
			projection.UserInfo{UserID: 7, Username: "alice", Time: at}, false, "debezium.auth_user"},
		{"user without username", string(dbzEvent("auth_user", "u", "", fmt.Sprintf(user, "7", "null"), "1")), nil, false, "debezium.auth_user"},
		{"user delete without username", string(dbzEvent("auth_user", "d", fmt.Sprintf(user, "7", "null"), "", "1793527200457")),
			projection.Retirement{UserID: 7, Time: at}, false, "debezium.auth_user"},
		{"course boolean, null name", string(dbzEvent("course_overviews_courseoverview", "c", "", fmt.Sprintf(course, "null", "true"), "1793527200457")),
			projection.CourseInfo{CourseID: "c", MobileAvailable: ptr(true), Time: at}, false, "debezium.course_overviews_courseoverview"},
		{"course null availability", string(dbzEvent("course_overviews_courseoverview", "u", "", fmt.Sprintf(course, `""`, "null"), "1793527200457")),
			projection.CourseInfo{CourseID: "c", Name: ptr(""), Time: at}, false, "debezium.course_overviews_courseoverview"},
		{"ts_ms from source", strings.Replace(string(dbzEvent("auth_user", "c", "", fmt.Sprintf(user, "7", `"a"`), "null")), `"ts_ms":1,`, `"ts_ms":1793527200457,`, 1),
			projection.UserInfo{UserID: 7, Username: "a", Time: at}, false, "debezium.auth_user"},
		{"no time at all", strings.Replace(string(dbzEvent("auth_user", "c", "", fmt.Sprintf(user, "7", `"a"`), "null")), `"ts_ms":1,`, ``, 1),
			nil, false, "debezium.auth_user"},
		{"unknown table", string(dbzEvent("student_anonymoususerid", "c", "", `{"id":1}`, "1")), nil, true, "debezium.other"},
		{"truncate", string(dbzEvent("auth_user", "t", "", "", "1")), nil, true, "debezium.auth_user"},
		{"unknown op", string(dbzEvent("auth_user", "x", "", fmt.Sprintf(user, "7", `"a"`), "1")), nil, false, "debezium.auth_user"},
		{"no source table", `{"before":null,"after":{"id":7},"source":{},"op":"c","ts_ms":1}`, nil, false, "debezium"},
		{"enveloped tombstone", `{"schema":null,"payload":null}`, nil, true, "debezium"},
		{"payload not an object", `{"schema":null,"payload":[1]}`, nil, false, "debezium"},
	}
	dec := consumer.NewDecoder(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(consumer.Message{Value: []byte(tt.value)})
			if got.Type != tt.wantType {
				t.Errorf("type %q, want %q", got.Type, tt.wantType)
			}
			switch {
			case tt.wantIgnored:
				if err != nil || got.Ignored == "" || len(got.Events) != 0 {
					t.Fatalf("err %v, ignored %q, %d events: want ignored", err, got.Ignored, len(got.Events))
				}
			case tt.want == nil:
				if !errors.Is(err, consumer.ErrUndecodable) {
					t.Fatalf("err %v, want poison", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				want := expectOf(tt.want)
				for k, v := range want {
					if tm, ok := v.(time.Time); ok {
						want[k] = tm.Format(time.RFC3339Nano)
					}
				}
				if len(got.Events) != 1 {
					t.Fatalf("%d events", len(got.Events))
				}
				if err := sameEvent(want, got.Events[0]); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestDebeziumStampsKeepOrderWithinAMillisecond: a row unenrolled, then
// re-enrolled, both processed by Debezium within one millisecond (a
// connector catching up stamps a backlog so). ts_us and ts_ns (Debezium
// 2.6+) keep their order, whichever arrives first; the tie rule would
// otherwise let the unenrollment win. A finer stamp outside ts_ms's
// millisecond (a producer that rewrote ts_ms only) is not believed.
func TestDebeziumStampsKeepOrderWithinAMillisecond(t *testing.T) {
	row := `{"id":1,"user_id":7,"course_id":"c","created":1793527200123456,"is_active":%d,"mode":"audit"}`
	change := func(active int, stamps string) []byte {
		return dbzEvent("student_courseenrollment", "u", "", fmt.Sprintf(row, active), stamps)
	}
	dec := consumer.NewDecoder(nil)
	decode := func(v []byte) projection.Event {
		t.Helper()
		d, err := dec.Decode(consumer.Message{Value: v})
		if err != nil || len(d.Events) != 1 {
			t.Fatalf("%s: %v, %+v", v, err, d)
		}
		return d.Events[0]
	}
	const ms = 1793600001000
	for _, tc := range []struct {
		name                   string
		unenroll, reenroll     string
		wantActive             bool
		wantUnenrollAt, wantAt time.Time
	}{
		{"ts_us", fmt.Sprintf(`%d,"ts_us":%d`, ms, ms*1000+100), fmt.Sprintf(`%d,"ts_us":%d`, ms, ms*1000+500), true,
			time.UnixMicro(ms*1000 + 100).UTC(), time.UnixMicro(ms*1000 + 500).UTC()},
		{"ts_ns before ts_us", fmt.Sprintf(`%d,"ts_us":%d,"ts_ns":%d`, ms, ms*1000+100, ms*1000000+100001), fmt.Sprintf(`%d,"ts_us":%d,"ts_ns":%d`, ms, ms*1000+100, ms*1000000+100002), true,
			time.Unix(0, ms*1000000+100001).UTC(), time.Unix(0, ms*1000000+100002).UTC()},
		{"ts_ms only: the tie rule", fmt.Sprint(ms), fmt.Sprint(ms), false, time.UnixMilli(ms).UTC(), time.UnixMilli(ms).UTC()},
		{"ts_us of another millisecond: ts_ms", fmt.Sprintf(`%d,"ts_us":%d`, ms+1, ms*1000+900), fmt.Sprintf(`%d,"ts_us":%d`, ms, ms*1000+900), false,
			time.UnixMilli(ms + 1).UTC(), time.UnixMicro(ms*1000 + 900).UTC()},
		{"before 1970", fmt.Sprintf(`%d,"ts_us":%d`, -1, -900), fmt.Sprintf(`%d,"ts_us":%d`, -1, -100), true,
			time.UnixMicro(-900).UTC(), time.UnixMicro(-100).UTC()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off, on := decode(change(0, tc.unenroll)), decode(change(1, tc.reenroll))
			if got := off.(projection.Enrollment).Time; !got.Equal(tc.wantUnenrollAt) {
				t.Errorf("unenrollment at %v, want %v", got, tc.wantUnenrollAt)
			}
			if got := on.(projection.Enrollment).Time; !got.Equal(tc.wantAt) {
				t.Errorf("re-enrollment at %v, want %v", got, tc.wantAt)
			}
			for _, order := range [][]projection.Event{{off, on}, {on, off}} {
				u := projection.User{ID: 7}
				for _, e := range order {
					u.Apply(e)
				}
				c, ok := u.Course("c")
				if !ok || c.Enrollment.Active != tc.wantActive {
					t.Errorf("applied %T then %T: %+v, want active %v", order[0], order[1], c.Enrollment, tc.wantActive)
				}
			}
		})
	}
}
