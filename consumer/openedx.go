package consumer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Event types, as in openedx-events and events.md.
const (
	TypeEnrollmentCreated    = "org.openedx.learning.course.enrollment.created.v1"
	TypeEnrollmentChanged    = "org.openedx.learning.course.enrollment.changed.v1"
	TypeUnenrollmentComplete = "org.openedx.learning.course.unenrollment.completed.v1"
	TypeCatalogInfoChanged   = "org.openedx.content_authoring.course.catalog_info.changed.v1"
	TypeTrackingEvent        = "org.openedx.analytics.tracking.event.emitted.v1"
	TypeCourse               = "enrollstatus.course.v1"
	TypeUserRetired          = "enrollstatus.user.retired.v1"

	// CompletionEventName is the tracking log event edx-completion emits on
	// every submit_completion.
	CompletionEventName = "edx.completion.block_completion.changed"
)

var knownTypes = map[string]struct{}{
	TypeEnrollmentCreated: {}, TypeEnrollmentChanged: {}, TypeUnenrollmentComplete: {},
	TypeCatalogInfoChanged: {}, TypeTrackingEvent: {}, TypeCourse: {}, TypeUserRetired: {},
}

// The shapes of openedx-events data, shared by the Avro and JSON formats
// (both decode into these through JSON-like maps or structs).

type enrollmentData struct {
	User struct {
		ID       flexInt  `json:"id"`
		IsActive *bool    `json:"is_active"`
		PII      *userPII `json:"pii"`
	} `json:"user"`
	Course struct {
		CourseKey   string  `json:"course_key"`
		DisplayName *string `json:"display_name"`
	} `json:"course"`
	Mode         string   `json:"mode"`
	IsActive     *bool    `json:"is_active"`
	CreationDate flexTime `json:"creation_date"`
}

type userPII struct {
	Username string `json:"username"`
}

type catalogInfoData struct {
	CourseKey string  `json:"course_key"`
	Name      *string `json:"name"`
}

type trackingLogData struct {
	Name      string          `json:"name"`
	Timestamp flexTime        `json:"timestamp"`
	Data      json.RawMessage `json:"data"` // a JSON string holding JSON, or an object
}

type completionData struct {
	UserID   flexInt  `json:"user_id"`
	CourseID string   `json:"course_id"`
	BlockID  string   `json:"block_id"`
	Created  flexTime `json:"created"`
}

type courseData struct {
	CourseKey       string  `json:"course_key"`
	DisplayName     *string `json:"display_name"`
	MobileAvailable *bool   `json:"mobile_available"`
}

type retiredData struct {
	UserID   flexInt `json:"user_id"`
	Username string  `json:"username"`
}

// enrollmentEvent converts enrollment data of any of the three enrollment
// types into a projection event.
func enrollmentEvent(ceType string, d enrollmentData, at time.Time) (projection.Event, error) {
	e := projection.Enrollment{
		UserID:     int64(d.User.ID),
		CourseID:   d.Course.CourseKey,
		CourseName: d.Course.DisplayName,
		Mode:       d.Mode,
		Created:    time.Time(d.CreationDate),
		Time:       at,
	}
	// CourseData.display_name is a required string in openedx-events, so a
	// producer that has no name sends "": that is an unknown name, not an
	// empty one, and must not win the name race against the real one. Every
	// format goes through here, so they agree.
	if e.CourseName != nil && *e.CourseName == "" {
		e.CourseName = nil
	}
	if d.User.PII != nil {
		e.Username = d.User.PII.Username
	}
	switch {
	case ceType == TypeUnenrollmentComplete:
		e.Active = false
	case d.IsActive != nil:
		e.Active = *d.IsActive
	default:
		return nil, undecodable("%s without enrollment.is_active", ceType)
	}
	return e, nil
}

// trackingEvent returns the completion a tracking log carries, or nil for any
// other tracking event.
func trackingEvent(t trackingLogData, at time.Time) (projection.Event, error) {
	if t.Name != CompletionEventName {
		return nil, nil
	}
	raw := []byte(t.Data)
	var s string
	if len(raw) > 0 && raw[0] == '"' { // the LMS sends data as a JSON string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, undecodable("tracking log data: %v", err)
		}
		raw = []byte(s)
	}
	var c completionData
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, undecodable("completion payload: %v", err)
	}
	if at.IsZero() {
		at = time.Time(t.Timestamp)
	}
	return projection.Completion{
		UserID:   int64(c.UserID),
		CourseID: c.CourseID,
		BlockID:  c.BlockID,
		Created:  time.Time(c.Created),
		Time:     at,
	}, nil
}

// flexInt accepts a JSON number or a string holding one: producers differ.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer id: %s", b)
	}
	*f = flexInt(v)
	return nil
}

// flexTime parses ISO-8601 generously: Z or an offset, any fraction, a space
// for the T, and naive times taken as UTC (Django stores UTC).
type flexTime time.Time

func (f *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = flexTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time is not a string: %s", b)
	}
	t, err := ParseTime(s)
	*f = flexTime(t)
	return err
}

// timeLayouts are the forms ParseTime reads, in the order it tries them:
// first those every Open edX producer writes, then the rest of ISO 8601's
// date-times that other producers write (isoLayouts). A time without an
// offset is UTC.
var timeLayouts = append([]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}, isoLayouts()...)

// isoLayouts are ISO 8601's date-times in the extended form (2026-11-01T10:00)
// and the basic form (20261101T1000), with a T or a space, with or without
// seconds (and a fraction, which time.Parse reads after the seconds in any
// layout, with a point or a comma), and an offset as Z, ±hh:mm, ±hhmm or ±hh,
// or none.
func isoLayouts() []string {
	var out []string
	for _, form := range []struct{ date, clock, minutes string }{
		{"2006-01-02", "15:04:05", "15:04"},
		{"20060102", "150405", "1504"},
	} {
		for _, sep := range []string{"T", " "} {
			for _, clock := range []string{form.clock, form.minutes} {
				for _, zone := range []string{"Z07:00", "Z0700", "Z07", ""} {
					out = append(out, form.date+sep+clock+zone)
				}
			}
		}
	}
	return out
}

// parseTimeFast parses the canonical RFC 3339 form every producer writes
// (2026-11-17T18:15:25.571418+00:00, or with Z, with 0 to 9 fraction digits)
// without allocating, to exactly what ParseTime returns; ok is false for
// anything else, which ParseTime then reads (TestParseTimeFastAgrees).
func parseTimeFast(b []byte) (t time.Time, ok bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return t, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return t, false
	}
	rest, nsec := b[19:], 0
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return t, false
		}
		frac, _ := num(rest[1:n])
		for range 10 - n {
			frac *= 10
		}
		rest, nsec = rest[n:], frac
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(rest[1:3])
		om, ok2 := num(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return t, false
		}
		if offset = (oh*60 + om) * 60; rest[0] == '-' {
			offset = -offset
		}
	default:
		return t, false
	}
	unix := unixDays(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// daysIn is the number of days of a month (1 to 12) of a year.
func daysIn(month, year int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return monthDays[month]
}

var monthDays = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// unixDays is the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar, year 0 to 9999 (Hinnant's days_from_civil):
// what time.Date computes, without its normalization and time zone.
func unixDays(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y-- // the year starts in March: the leap day ends it
	}
	era := (y+400)/400 - 1 // floor(y / 400) for y >= -400
	yoe := y - era*400
	doy := int64((153*((month+9)%12)+2)/5 + day - 1)
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// ParseTime parses an ISO 8601 date-time generously: as Open edX producers
// write them, and in the other forms of timeLayouts, in either case (ISO
// 8601 allows a lower-case t and z).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if upper := strings.ToUpper(s); upper != s {
		if t, err := ParseTime(upper); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparseable time %q", s)
}
