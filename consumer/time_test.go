package consumer_test

import (
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
)

// TestParseTimeReadsISO8601: the forms of ISO 8601's date-times that
// producers other than Open edX's write, to the instant they name; and
// what is no date-time, refused (a number is not read as a year).
func TestParseTimeReadsISO8601(t *testing.T) {
	ten := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-01T10:00:00.123456+00:00": ten.Add(123456 * time.Microsecond), // Open edX's
		"2026-11-01T10:00:00Z":             ten,
		"2026-11-01T10:00:00+00":           ten, // an offset of hours only
		"2026-11-01T12:00:00+02":           ten,
		"2026-11-01 10:00:00+0000":         ten, // PostgreSQL, Python's str()
		"2026-11-01 11:30:00+0130":         ten,
		"2026-11-01T10:00Z":                ten, // no seconds: Java's OffsetDateTime.toString()
		"2026-11-01T10:00":                 ten,
		"2026-11-01t10:00:00z":             ten, // ISO 8601 allows lower case
		"20261101T100000Z":                 ten, // the basic form
		"20261101T153000.5+0530":           ten.Add(time.Second / 2),
		"20261101T1000Z":                   ten,
		"2026-11-01T11:00:00,25+01:00":     ten.Add(time.Second / 4), // a decimal comma
		"2026-11-01":                       ten.Add(-10 * time.Hour),
		" 2026-11-01T10:00:00Z\n":          ten,
	} {
		got, err := consumer.ParseTime(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1700000000", "2026", "2026-11", "2026-11-01T10", "yesterday",
		"2026-11-01T24:00:00Z", "2026-02-30T10:00:00Z", "2026-11-01T10:00:00+25:00", "2026-11-01T10:00:00 +00:00"} {
		if got, err := consumer.ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
}
