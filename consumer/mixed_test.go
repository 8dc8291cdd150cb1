package consumer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// TestMixedFormats is the formats' agreement property: one history, each event
// sent as Open edX event-bus Avro, Debezium change events and/or native JSON
// (whichever can carry it, often several), with duplicates, shuffled, builds
// the same projection — equal digests, equal answers for every username ever
// used — as the same history sent as native JSON only, and as the history's
// events applied directly.
//
// UserInfo has no native JSON form (auth_user rows are its only source), so
// the history leaves it out; auth_user rows still appear, as the username
// half of a Debezium enrollment.
func TestMixedFormats(t *testing.T) {
	fixtures := loadFixtures(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	coverage := map[string]int{}
	for _, mode := range decoderModes(t, fixtures) {
		t.Run(mode.name, func(t *testing.T) {
			for seed := range uint64(3) {
				rng := rand.New(rand.NewPCG(seed, 0x6d6978))
				var history []projection.Event
				for _, e := range reference.RandomHistory(rng, 25, 6, 1200, now) {
					if _, ok := e.(projection.UserInfo); !ok {
						history = append(history, e)
					}
				}
				enc := &wireEncoder{t: t, rng: rng, bus: newEventBus(t)}

				var jsonOnly, mixed []consumer.Message
				for _, e := range history {
					jsonOnly = append(jsonOnly, enc.json(e)...)
					var chosen []consumer.Message
					for len(chosen) == 0 {
						for _, f := range []string{"json", "avro", "debezium"} {
							if rng.IntN(2) == 0 {
								continue
							}
							msgs := enc.format(f, e)
							if len(msgs) > 0 {
								coverage[f+"/"+kindOf(e)]++
							}
							chosen = append(chosen, msgs...)
						}
					}
					mixed = append(mixed, chosen...)
				}

				direct := mustStore(t)
				applyShuffled(t, rng, direct, history)
				fromJSON := mustStore(t)
				applyShuffled(t, rng, fromJSON, decodeMessages(t, mode.dec, duplicate(rng, jsonOnly)))
				fromMixed := mustStore(t)
				applyShuffled(t, rng, fromMixed, decodeMessages(t, mode.dec, duplicate(rng, mixed)))

				sameProjection(t, "native JSON", fromJSON, "mixed formats", fromMixed)
				sameProjection(t, "events applied directly", direct, "native JSON", fromJSON)
				sameAnswers(t, history, now, direct, fromJSON, fromMixed)
			}
		})
	}
	// The property is only as strong as the mixture: every format carried
	// every kind of event it can.
	for _, c := range []string{"json/enrollment", "json/completion", "json/course", "json/retirement",
		"avro/enrollment", "avro/completion", "avro/course",
		"debezium/enrollment", "debezium/completion", "debezium/course", "debezium/retirement"} {
		if coverage[c] < 10 {
			t.Errorf("only %d %s events in the mixed streams", coverage[c], c)
		}
	}
}

func kindOf(e projection.Event) string {
	switch e.(type) {
	case projection.Enrollment:
		return "enrollment"
	case projection.Completion:
		return "completion"
	case projection.CourseInfo:
		return "course"
	case projection.Retirement:
		return "retirement"
	}
	return fmt.Sprintf("%T", e)
}

func mustStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// duplicate returns msgs with about a fifth of them repeated, shuffled.
func duplicate(rng *rand.Rand, msgs []consumer.Message) []consumer.Message {
	out := append([]consumer.Message(nil), msgs...)
	for _, m := range msgs {
		if rng.IntN(5) == 0 {
			out = append(out, m)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func decodeMessages(t testing.TB, dec *consumer.Decoder, msgs []consumer.Message) []projection.Event {
	t.Helper()
	var out []projection.Event
	for _, m := range msgs {
		d, err := dec.Decode(m)
		if err != nil {
			t.Fatalf("decode %s: %v", m.Value, err)
		}
		if d.Ignored != "" {
			t.Fatalf("ignored (%s): %s", d.Ignored, m.Value)
		}
		out = append(out, d.Events...)
	}
	return out
}

// applyShuffled applies events in a random order, split into random batches.
func applyShuffled(t testing.TB, rng *rand.Rand, s *store.Store, events []projection.Event) {
	t.Helper()
	events = reference.Shuffle(rng, events, 0)
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(800))
		if _, err := s.Apply(store.Batch{Events: events[:n], Messages: n}); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

func sameProjection(t testing.TB, aName string, a *store.Store, bName string, b *store.Store) {
	t.Helper()
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if da.Keys["users"] == 0 {
		t.Fatalf("%s: empty projection", aName)
	}
	if da.Total != db.Total {
		diffs, err := store.Diff(a, b, 10)
		t.Fatalf("%s and %s differ (a, b): %v %v", aName, bName, diffs, err)
	}
}

// sameAnswers asks every store for every username the history ever used
// (old names and retired users' too) and checks the current ones against the
// reference model.
func sameAnswers(t testing.TB, history []projection.Event, now time.Time, stores ...*store.Store) {
	t.Helper()
	ctx := context.Background()
	names := map[string]bool{}
	for _, e := range history {
		if e, ok := e.(projection.Enrollment); ok {
			names[e.Username] = true
		}
	}
	model := &reference.Model{Events: history}
	current := map[string]int64{}
	for id, name := range model.Usernames() {
		current[name] = id
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	answered := 0
	for _, name := range sorted {
		want, _, err := stores[0].Status(ctx, name, now)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range stores[1:] {
			got, _, err := s.Status(ctx, name, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: store %d answers %+v, store 0 %+v", name, i+1, got, want)
			}
		}
		id, ok := current[name]
		if !ok {
			continue
		}
		ref := model.Status(id, now, projection.DefaultPolicy())
		if len(ref) != len(want) {
			t.Fatalf("%q: %d entries, reference %d", name, len(want), len(ref))
		}
		for i, r := range ref {
			w := want[i]
			nameOK := (r.CourseName == nil && !w.HasCourseName) || (r.CourseName != nil && w.HasCourseName && w.CourseName == *r.CourseName)
			if w.CourseID != r.CourseID || w.RecentlyActive != r.RecentlyActive || !nameOK {
				t.Fatalf("%q entry %d: %+v, reference %+v", name, i, w, r)
			}
		}
		answered++
	}
	if answered == 0 {
		t.Fatal("no user to ask")
	}
}

// wireEncoder writes projection events in the three wire formats, choosing
// at random among each format's ways to say the same thing.
type wireEncoder struct {
	t   testing.TB
	rng *rand.Rand
	bus *eventBus
	seq int
}

func (w *wireEncoder) format(f string, e projection.Event) []consumer.Message {
	switch f {
	case "json":
		return w.json(e)
	case "avro":
		return w.avro(e)
	}
	return w.debezium(e)
}

func (w *wireEncoder) id() string {
	w.seq++
	return fmt.Sprintf("%08x-0000-1000-8000-000000000000", w.seq)
}

func (w *wireEncoder) coin() bool { return w.rng.IntN(2) == 0 }

// isoTime writes t as producers do: Python's isoformat in UTC or another
// offset, or Go's RFC 3339.
func (w *wireEncoder) isoTime(t time.Time) string {
	switch w.rng.IntN(3) {
	case 0:
		return pyISO(t)
	case 1:
		return t.In(time.FixedZone("", -5*3600)).Format("2006-01-02T15:04:05.999999-07:00")
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (w *wireEncoder) enrollmentType(e projection.Enrollment) string {
	switch {
	case e.Active && w.coin():
		return consumer.TypeEnrollmentCreated
	case e.Active, w.coin():
		return consumer.TypeEnrollmentChanged
	}
	return consumer.TypeUnenrollmentComplete
}

// dataIsActive is the enrollment's is_active as the data says it: an
// unenrollment.completed may carry a stale true.
func (w *wireEncoder) dataIsActive(ceType string, e projection.Enrollment) bool {
	if ceType == consumer.TypeUnenrollmentComplete {
		return w.coin()
	}
	return e.Active
}

func (w *wireEncoder) json(e projection.Event) []consumer.Message {
	var ceType string
	var data map[string]any
	switch e := e.(type) {
	case projection.Enrollment:
		ceType = w.enrollmentType(e)
		course := map[string]any{"course_key": e.CourseID, "start": nil, "end": nil}
		switch {
		case e.CourseName != nil:
			course["display_name"] = *e.CourseName
		case w.coin():
			course["display_name"] = ""
		case w.coin():
			course["display_name"] = nil
		}
		data = map[string]any{"enrollment": map[string]any{
			"user": map[string]any{"id": e.UserID, "is_active": true,
				"pii": map[string]any{"username": e.Username, "email": "u@test", "name": ""}},
			"course": course, "mode": e.Mode, "is_active": w.dataIsActive(ceType, e),
			"creation_date": w.isoTime(e.Created), "created_by": nil,
		}}
	case projection.Completion:
		ceType = consumer.TypeTrackingEvent
		var payload any = completionPayload(e, w.isoTime(e.Created))
		if w.coin() {
			b, _ := json.Marshal(payload)
			payload = string(b)
		}
		data = map[string]any{"tracking_log": map[string]any{"name": consumer.CompletionEventName,
			"timestamp": pyISO(e.Time), "data": payload, "context": "{}"}}
	case projection.CourseInfo:
		if e.Name != nil && e.MobileAvailable == nil && w.coin() {
			ceType = consumer.TypeCatalogInfoChanged
			schedule := map[string]any{"start": "2026-01-01T00:00:00+00:00", "pacing": "self"}
			data = map[string]any{"catalog_info": map[string]any{"course_key": e.CourseID, "name": *e.Name,
				"schedule_data": schedule, "hidden": false, "invitation_only": false}}
			break
		}
		ceType = consumer.TypeCourse
		data = map[string]any{"course_key": e.CourseID}
		if e.Name != nil {
			data["display_name"] = *e.Name
		}
		if e.MobileAvailable != nil {
			data["mobile_available"] = *e.MobileAvailable
		}
	case projection.Retirement:
		ceType = consumer.TypeUserRetired
		data = map[string]any{"user_id": e.UserID, "username": e.Username}
	default:
		w.t.Fatalf("no native JSON for %T", e)
	}
	v, err := json.Marshal(map[string]any{"specversion": "1.0", "type": ceType, "source": "openedx/lms/web",
		"id": w.id(), "time": w.isoTime(e.EventTime()), "datacontenttype": "application/json", "data": data})
	if err != nil {
		w.t.Fatal(err)
	}
	return []consumer.Message{{Value: v}}
}

func completionPayload(e projection.Completion, created string) map[string]any {
	return map[string]any{"user_id": e.UserID, "course_id": e.CourseID, "block_id": e.BlockID,
		"block_type": "problem", "completion": 1.0, "modified": created, "created": created}
}

// avro returns nil for what the event bus cannot say: retirements, and
// course metadata other than a name alone.
func (w *wireEncoder) avro(e projection.Event) []consumer.Message {
	switch e := e.(type) {
	case projection.Enrollment:
		ceType := w.enrollmentType(e)
		var r wireEnrollment
		r.Enrollment.User = wireUser{ID: e.UserID, IsActive: true, PII: wirePII{Username: e.Username, Email: "u@test"}}
		r.Enrollment.Course.CourseKey = e.CourseID
		if e.CourseName != nil {
			r.Enrollment.Course.DisplayName = *e.CourseName
		}
		r.Enrollment.Mode, r.Enrollment.IsActive = e.Mode, w.dataIsActive(ceType, e)
		r.Enrollment.CreationDate = w.isoTime(e.Created)
		if w.coin() {
			r.Enrollment.CreatedBy = &wireUser{ID: 1, PII: wirePII{Username: "staff"}}
		}
		return []consumer.Message{w.bus.message(w.t, ceType, w.id(), e.Time, r)}
	case projection.Completion:
		var r wireTracking
		r.TrackingLog.Name, r.TrackingLog.Timestamp = consumer.CompletionEventName, pyISO(e.Time)
		b, _ := json.Marshal(completionPayload(e, w.isoTime(e.Created)))
		r.TrackingLog.Data, r.TrackingLog.Context = string(b), "{}"
		return []consumer.Message{w.bus.message(w.t, consumer.TypeTrackingEvent, w.id(), e.Time, r)}
	case projection.CourseInfo:
		if e.Name == nil || e.MobileAvailable != nil {
			return nil
		}
		var r wireCatalog
		r.CatalogInfo.CourseKey, r.CatalogInfo.Name = e.CourseID, *e.Name
		r.CatalogInfo.ScheduleData.Start, r.CatalogInfo.ScheduleData.Pacing = "2026-01-01T00:00:00+00:00", "self"
		return []consumer.Message{w.bus.message(w.t, consumer.TypeCatalogInfoChanged, w.id(), e.Time, r)}
	}
	return nil
}

// dbzColumn is a column of a Debezium row schema.
type dbzColumn struct{ name, typ, semantic string }

// debezium writes the LMS rows behind an event. An enrollment row carries no
// username and no course name, so an enrollment that has them also becomes
// an auth_user row and a course overview row (without mobile availability)
// at the same time: the same claims, from their own tables.
func (w *wireEncoder) debezium(e projection.Event) []consumer.Message {
	var out []consumer.Message
	switch e := e.(type) {
	case projection.Enrollment:
		created, createdCol := w.dbzTime(e.Created, "created")
		activeCol := dbzColumn{"is_active", "int16", ""}
		var active any = 0
		if e.Active {
			active = 1
		}
		if w.coin() {
			activeCol.typ, active = "boolean", e.Active
		}
		row := map[string]any{"id": w.seq, "user_id": e.UserID, "course_id": e.CourseID,
			"created": created, "is_active": active, "mode": e.Mode}
		cols := []dbzColumn{{"id", "int32", ""}, {"user_id", "int32", ""}, {"course_id", "string", ""},
			createdCol, activeCol, {"mode", "string", ""}}
		switch {
		case !e.Active && w.coin(): // the row is deleted: its before image, whatever it said
			if activeCol.typ == "boolean" {
				row["is_active"] = w.coin()
			} else {
				row["is_active"] = w.rng.IntN(2)
			}
			out = append(out, w.dbzMessage("student_courseenrollment", "d", row, cols, e.Time))
		default:
			out = append(out, w.dbzMessage("student_courseenrollment", w.dbzOp(), row, cols, e.Time))
		}
		if e.Username != "" {
			out = append(out, w.dbzMessage("auth_user", w.dbzOp(), map[string]any{"id": e.UserID, "username": e.Username},
				[]dbzColumn{{"id", "int32", ""}, {"username", "string", ""}}, e.Time))
		}
		if e.CourseName != nil {
			out = append(out, w.dbzMessage("course_overviews_courseoverview", w.dbzOp(),
				map[string]any{"id": e.CourseID, "display_name": *e.CourseName, "mobile_available": nil},
				[]dbzColumn{{"id", "string", ""}, {"display_name", "string", ""}, {"mobile_available", "int16", ""}}, e.Time))
		}
	case projection.Completion:
		created, createdCol := w.dbzTime(e.Created, "created")
		row := map[string]any{"id": w.seq, "created": created, "modified": created, "course_key": e.CourseID,
			"block_key": e.BlockID, "block_type": "problem", "completion": 1.0, "user_id": e.UserID}
		createdCol2 := createdCol
		createdCol2.name = "modified"
		cols := []dbzColumn{{"id", "int64", ""}, createdCol, createdCol2, {"course_key", "string", ""},
			{"block_key", "string", ""}, {"block_type", "string", ""}, {"completion", "double", ""}, {"user_id", "int32", ""}}
		out = append(out, w.dbzMessage("completion_blockcompletion", w.dbzOp(), row, cols, e.Time))
	case projection.CourseInfo:
		row := map[string]any{"id": e.CourseID, "display_name": nil, "mobile_available": nil}
		if e.Name != nil {
			row["display_name"] = *e.Name
		}
		mobileCol := dbzColumn{"mobile_available", "int16", ""}
		if e.MobileAvailable != nil {
			switch {
			case w.coin():
				mobileCol.typ, row["mobile_available"] = "boolean", *e.MobileAvailable
			case *e.MobileAvailable:
				row["mobile_available"] = 1
			default:
				row["mobile_available"] = 0
			}
		}
		out = append(out, w.dbzMessage("course_overviews_courseoverview", w.dbzOp(), row,
			[]dbzColumn{{"id", "string", ""}, {"display_name", "string", ""}, mobileCol}, e.Time))
	case projection.Retirement:
		var name any
		if e.Username != "" {
			name = e.Username
		}
		out = append(out, w.dbzMessage("auth_user", "d", map[string]any{"id": e.UserID, "username": name},
			[]dbzColumn{{"id", "int32", ""}, {"username", "string", ""}}, e.Time))
	default:
		w.t.Fatalf("no Debezium row for %T", e)
	}
	return out
}

func (w *wireEncoder) dbzOp() string { return []string{"c", "u", "r"}[w.rng.IntN(3)] }

// dbzTime writes a DATETIME(6) or TIMESTAMP column in one of Debezium's
// representations.
func (w *wireEncoder) dbzTime(t time.Time, col string) (any, dbzColumn) {
	switch w.rng.IntN(4) {
	case 0:
		if t.Nanosecond()%int(time.Millisecond) == 0 {
			return t.UnixMilli(), dbzColumn{col, "int64", "io.debezium.time.Timestamp"}
		}
	case 1:
		return t.UTC().Format(time.RFC3339Nano), dbzColumn{col, "string", "io.debezium.time.ZonedTimestamp"}
	case 2:
		return t.UnixNano(), dbzColumn{col, "int64", "io.debezium.time.NanoTimestamp"}
	}
	return t.UnixMicro(), dbzColumn{col, "int64", "io.debezium.time.MicroTimestamp"}
}

// dbzMessage writes a change event as the JsonConverter does, with or
// without schemas.
func (w *wireEncoder) dbzMessage(table, op string, row map[string]any, cols []dbzColumn, at time.Time) consumer.Message {
	w.seq++
	payload := map[string]any{
		"before": nil, "after": row, "op": op, "ts_ms": at.UnixMilli(), "transaction": nil,
		"source": map[string]any{"version": "2.7.3.Final", "connector": "mysql", "name": "lms",
			"ts_ms": at.UnixMilli() - 100, "db": "edxapp", "table": table, "snapshot": "false"},
	}
	if op == "d" {
		payload["before"], payload["after"] = row, nil
	}
	var v any = payload
	if w.coin() {
		fields := make([]map[string]any, len(cols))
		for i, c := range cols {
			fields[i] = map[string]any{"field": c.name, "type": c.typ, "optional": true}
			if c.semantic != "" {
				fields[i]["name"], fields[i]["version"] = c.semantic, 1
			}
		}
		value := func(field string) map[string]any {
			return map[string]any{"type": "struct", "fields": fields, "optional": true,
				"name": "lms.edxapp." + table + ".Value", "field": field}
		}
		v = map[string]any{"payload": payload, "schema": map[string]any{
			"type": "struct", "name": "lms.edxapp." + table + ".Envelope", "version": 2,
			"fields": []any{value("before"), value("after"),
				map[string]any{"type": "string", "optional": false, "field": "op"},
				map[string]any{"type": "int64", "optional": true, "field": "ts_ms"}},
		}}
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	return consumer.Message{Topic: "lms.edxapp." + table, Value: b}
}
