package consumer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The LMS tables a Debezium change stream is read from.
const (
	tableEnrollment = "student_courseenrollment"
	tableCompletion = "completion_blockcompletion"
	tableCourse     = "course_overviews_courseoverview"
	tableUser       = "auth_user"
)

// Debezium's semantic types of temporal columns (the schema's field "name"),
// and Kafka Connect's own, used with time.precision.mode=connect.
const (
	dbzTimestamp       = "io.debezium.time.Timestamp"      // int64 ms
	dbzMicroTimestamp  = "io.debezium.time.MicroTimestamp" // int64 µs
	dbzNanoTimestamp   = "io.debezium.time.NanoTimestamp"  // int64 ns
	dbzZonedTimestamp  = "io.debezium.time.ZonedTimestamp" // ISO-8601 string
	dbzDate            = "io.debezium.time.Date"           // int32 days
	connectTimestamp   = "org.apache.kafka.connect.data.Timestamp"
	connectDate        = "org.apache.kafka.connect.data.Date"
	debeziumTypePrefix = "debezium."
)

// dbzPayload is a Debezium change event: the envelope's payload, or the
// whole message when the JsonConverter has schemas.enable=false.
type dbzPayload struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source struct {
		Table string `json:"table"`
		dbzStamps
	} `json:"source"`
	Op string `json:"op"`
	dbzStamps
}

// dbzStamps are a time in milliseconds, and since Debezium 2.6 also in
// microseconds and nanoseconds, since the Unix epoch.
type dbzStamps struct {
	TsMs json.RawMessage `json:"ts_ms"`
	TsUs json.RawMessage `json:"ts_us"`
	TsNs json.RawMessage `json:"ts_ns"`
}

// at is the time the stamps give; ok is false if there are none. ts_ns or
// ts_us refine ts_ms within its millisecond, so that two changes of a row
// that Debezium processed in the same millisecond keep their order; one
// that names another millisecond than ts_ms (a producer that rewrote
// ts_ms only) is not believed.
func (s dbzStamps) at() (t time.Time, ok bool, err error) {
	var ms int64
	hasMs := !isNull(s.TsMs)
	if hasMs {
		if ms, err = jsonInt(s.TsMs); err != nil {
			return time.Time{}, false, fmt.Errorf("ts_ms: %w", err)
		}
	}
	for _, fine := range []struct {
		name string
		raw  json.RawMessage
		at   func(int64) time.Time
	}{{"ts_ns", s.TsNs, func(n int64) time.Time { return time.Unix(0, n) }}, {"ts_us", s.TsUs, time.UnixMicro}} {
		if isNull(fine.raw) {
			continue
		}
		n, err := jsonInt(fine.raw)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %w", fine.name, err)
		}
		if t := fine.at(n); !hasMs || t.UnixMilli() == ms { // UnixMilli rounds down, before 1970 too
			return t.UTC(), true, nil
		}
	}
	if hasMs {
		return time.UnixMilli(ms).UTC(), true, nil
	}
	return time.Time{}, false, nil
}

// dbzField is a field of a Kafka Connect schema.
type dbzField struct {
	Field  string     `json:"field"`
	Type   string     `json:"type"`
	Name   string     `json:"name"`
	Fields []dbzField `json:"fields"`
}

// decodeDebezium decodes a Debezium change event of an LMS table (Kafka
// Connect's JsonConverter, with or without schemas).
//
// Temporal columns are read as the schema's semantic type says. Without a
// schema, a string is an ISO-8601 date-time, and a number's unit is guessed
// by its magnitude: below 10^7 days (Date), below 10^14 milliseconds
// (Timestamp), below 10^17 microseconds (MicroTimestamp), else nanoseconds
// (NanoTimestamp). A wrong guess would need a time before 1973 or after 5138.
func decodeDebezium(m Message) (Decoded, error) {
	dec := Decoded{Type: "debezium"}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(m.Value, &top); err != nil {
		return dec, undecodable("Debezium change event: %v", err)
	}
	raw := m.Value
	var schema json.RawMessage
	if p, ok := top["payload"]; ok {
		if _, bare := top["op"]; !bare {
			raw, schema = p, top["schema"]
		}
	}
	if isNull(raw) {
		dec.Ignored = "tombstone (null payload)"
		return dec, nil
	}
	var p dbzPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return dec, undecodable("Debezium change event: %v", err)
	}
	if p.Source.Table == "" {
		return dec, undecodable("Debezium change event without source.table")
	}
	switch p.Source.Table {
	case tableEnrollment, tableCompletion, tableCourse, tableUser:
		dec.Type = debeziumTypePrefix + p.Source.Table
	default:
		dec.Type = debeziumTypePrefix + "other"
		dec.Ignored = fmt.Sprintf("table %q is not read", truncate(p.Source.Table, 100))
		return dec, nil
	}
	fail := func(format string, args ...any) (Decoded, error) {
		return dec, undecodable("%s op %q: %s", dec.Type, truncate(p.Op, 8), fmt.Sprintf(format, args...))
	}

	var image json.RawMessage
	var imageName string
	switch p.Op {
	case "c", "u", "r":
		image, imageName = p.After, "after"
	case "d":
		image, imageName = p.Before, "before"
	case "t":
		dec.Ignored = "truncate"
		return dec, nil
	case "m":
		dec.Ignored = "logical decoding message"
		return dec, nil
	default:
		return fail("unknown op")
	}
	if p.Op == "d" {
		switch p.Source.Table {
		case tableCompletion:
			dec.Ignored = "completion delete (last activity is a maximum; a delete does not lower it)"
			return dec, nil
		case tableCourse:
			dec.Ignored = "course overview delete (overviews are rebuilt; keep what is known)"
			return dec, nil
		}
	}
	if isNull(image) {
		return fail("no %s image", imageName)
	}
	at, err := dbzEventTime(p)
	if err != nil {
		return fail("%v", err)
	}
	row, err := newDBZRow(image, schema, imageName)
	if err != nil {
		return fail("%v", err)
	}

	var e projection.Event
	switch p.Source.Table {
	case tableEnrollment:
		e, err = row.enrollment(p.Op, at)
	case tableCompletion:
		e, err = row.completion(at)
	case tableCourse:
		e, err = row.course(at)
	case tableUser:
		e, err = row.user(p.Op, at)
	}
	if err != nil {
		return fail("%v", err)
	}
	dec.Events = []projection.Event{e}
	return dec, nil
}

// dbzEventTime is when Debezium processed the change (the payload's
// stamps), else when the database made it (the source's).
func dbzEventTime(p dbzPayload) (time.Time, error) {
	for _, s := range []dbzStamps{p.dbzStamps, p.Source.dbzStamps} {
		if t, ok, err := s.at(); ok || err != nil {
			return t, err
		}
	}
	return time.Time{}, fmt.Errorf("neither payload.ts_ms nor source.ts_ms")
}

// dbzRow is a row image with the schema of its columns, when there is one.
type dbzRow struct {
	cols  map[string]json.RawMessage
	types map[string]dbzField // nil without a schema
}

func newDBZRow(image, schema json.RawMessage, imageName string) (dbzRow, error) {
	var r dbzRow
	if err := json.Unmarshal(image, &r.cols); err != nil {
		return r, fmt.Errorf("%s image: %w", imageName, err)
	}
	if isNull(schema) {
		return r, nil
	}
	var env dbzField
	if err := json.Unmarshal(schema, &env); err != nil {
		return r, fmt.Errorf("schema: %w", err)
	}
	for _, f := range env.Fields {
		if f.Field == imageName {
			r.types = make(map[string]dbzField, len(f.Fields))
			for _, c := range f.Fields {
				r.types[c.Field] = c
			}
		}
	}
	return r, nil
}

func (r dbzRow) enrollment(op string, at time.Time) (projection.Event, error) {
	uid, err := r.int("user_id")
	if err != nil {
		return nil, err
	}
	course, err := r.requiredString("course_id")
	if err != nil {
		return nil, err
	}
	mode, err := r.requiredString("mode")
	if err != nil {
		return nil, err
	}
	created, err := r.time("created")
	if err != nil {
		return nil, err
	}
	active, err := r.bool("is_active")
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, fmt.Errorf("is_active is null")
	}
	// A deleted row is no enrollment: the before image, inactive.
	return projection.Enrollment{UserID: uid, CourseID: course, Mode: mode,
		Active: *active && op != "d", Created: created, Time: at}, nil
}

func (r dbzRow) completion(at time.Time) (projection.Event, error) {
	uid, err := r.int("user_id")
	if err != nil {
		return nil, err
	}
	course, err := r.requiredString("course_key")
	if err != nil {
		return nil, err
	}
	block, err := r.requiredString("block_key")
	if err != nil {
		return nil, err
	}
	created, err := r.time("created")
	if err != nil {
		return nil, err
	}
	return projection.Completion{UserID: uid, CourseID: course, BlockID: block, Created: created, Time: at}, nil
}

func (r dbzRow) course(at time.Time) (projection.Event, error) {
	id, err := r.requiredString("id")
	if err != nil {
		return nil, err
	}
	name, err := r.string("display_name")
	if err != nil {
		return nil, err
	}
	mobile, err := r.bool("mobile_available")
	if err != nil {
		return nil, err
	}
	return projection.CourseInfo{CourseID: id, Name: name, MobileAvailable: mobile, Time: at}, nil
}

func (r dbzRow) user(op string, at time.Time) (projection.Event, error) {
	id, err := r.int("id")
	if err != nil {
		return nil, err
	}
	name, err := r.string("username")
	if err != nil {
		return nil, err
	}
	if op == "d" { // the row is gone: so is the user
		e := projection.Retirement{UserID: id, Time: at}
		if name != nil {
			e.Username = *name
		}
		return e, nil
	}
	if name == nil {
		return nil, fmt.Errorf("username is null")
	}
	return projection.UserInfo{UserID: id, Username: *name, Time: at}, nil
}

// col returns a column's value; absent columns are null.
func (r dbzRow) col(name string) json.RawMessage {
	v := r.cols[name]
	if isNull(v) {
		return nil
	}
	return v
}

func (r dbzRow) int(name string) (int64, error) {
	v := r.col(name)
	if v == nil {
		return 0, fmt.Errorf("%s is null", name)
	}
	n, err := jsonInt(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

func (r dbzRow) string(name string) (*string, error) {
	v := r.col(name)
	if v == nil {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%s is not a string: %s", name, truncate(string(v), 40))
	}
	return &s, nil
}

func (r dbzRow) requiredString(name string) (string, error) {
	s, err := r.string(name)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", fmt.Errorf("%s is null", name)
	}
	return *s, nil
}

// bool reads a BOOLEAN or TINYINT(1) column: true/false, or 0/1 (MySQL's
// tinyint, as Debezium sends it without a converter). Null is nil.
func (r dbzRow) bool(name string) (*bool, error) {
	v := r.col(name)
	var b bool
	switch {
	case v == nil:
		return nil, nil
	case string(v) == "true", string(v) == "false":
		b = string(v) == "true"
	default:
		n, err := jsonInt(v)
		if err != nil || (n != 0 && n != 1) {
			return nil, fmt.Errorf("%s is not a boolean: %s", name, truncate(string(v), 40))
		}
		b = n == 1
	}
	return &b, nil
}

// time reads a temporal column as its semantic type says, or as the magnitude
// rule of decodeDebezium guesses. Null is an error: the columns read are NOT
// NULL in the LMS.
func (r dbzRow) time(name string) (time.Time, error) {
	v := r.col(name)
	if v == nil {
		return time.Time{}, fmt.Errorf("%s is null", name)
	}
	t, err := dbzTime(v, r.types[name].Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func dbzTime(v json.RawMessage, semantic string) (time.Time, error) {
	if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return time.Time{}, err
		}
		switch semantic {
		case "", dbzZonedTimestamp:
			return ParseTime(s)
		}
		return time.Time{}, fmt.Errorf("a string for %s", semantic)
	}
	n, err := jsonInt(v)
	if err != nil {
		return time.Time{}, err
	}
	switch semantic {
	case dbzTimestamp, connectTimestamp:
		return time.UnixMilli(n).UTC(), nil
	case dbzMicroTimestamp:
		return time.UnixMicro(n).UTC(), nil
	case dbzNanoTimestamp:
		return time.Unix(0, n).UTC(), nil
	case dbzDate, connectDate:
		return dbzDays(n)
	case "":
	default:
		return time.Time{}, fmt.Errorf("unsupported temporal type %s", truncate(semantic, 60))
	}
	abs := n
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs < 1e7:
		return dbzDays(n)
	case abs < 1e14:
		return time.UnixMilli(n).UTC(), nil
	case abs < 1e17:
		return time.UnixMicro(n).UTC(), nil
	}
	return time.Unix(0, n).UTC(), nil
}

func dbzDays(n int64) (time.Time, error) {
	const maxDays = 1e7 // beyond year 9999 either way; keeps the product in range
	if n > maxDays || n < -maxDays {
		return time.Time{}, fmt.Errorf("%d days is out of range", n)
	}
	return time.Unix(n*86400, 0).UTC(), nil
}

// jsonInt reads a JSON integer, or a string holding one (Debezium's
// bigint.unsigned.handling.mode=string and similar).
func jsonInt(v json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(v))
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %s", truncate(string(v), 40))
	}
	return n, nil
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}
