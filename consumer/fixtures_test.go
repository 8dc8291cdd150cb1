package consumer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/projection"
)

// fixture is one file of testdata/events (see its README).
type fixture struct {
	Name     string  `json:"name"`
	Format   string  `json:"format"`
	Topic    string  `json:"topic"`
	KeyB64   *string `json:"key_b64"`
	ValueB64 *string `json:"value_b64"`
	Headers  []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
	WriterSchema json.RawMessage  `json:"writer_schema"`
	SchemaID     int              `json:"schema_id"`
	KeySchema    json.RawMessage  `json:"key_schema"`
	KeySchemaID  int              `json:"key_schema_id"`
	Expect       []map[string]any `json:"expect"`
	Ignored      string           `json:"ignored"`
}

// message is the Kafka record the fixture describes.
func (f fixture) message(t testing.TB) consumer.Message {
	t.Helper()
	m := consumer.Message{Topic: f.Topic}
	if f.ValueB64 != nil {
		v, err := base64.StdEncoding.DecodeString(*f.ValueB64)
		if err != nil {
			t.Fatalf("%s: value_b64: %v", f.Name, err)
		}
		m.Value = v
	}
	for _, h := range f.Headers {
		m.Headers = append(m.Headers, consumer.Header{Key: h.Key, Value: []byte(h.Value)})
	}
	return m
}

// loadFixtures reads every fixture file, in a stable order.
func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "events", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no fixtures under testdata/events")
	}
	sort.Strings(paths)
	out := make([]fixture, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var f fixture
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if want := strings.TrimSuffix(filepath.Base(p), ".json"); f.Name != want {
			t.Fatalf("%s: name %q", p, f.Name)
		}
		out = append(out, f)
	}
	return out
}

// registryServer is a Confluent schema registry on loopback serving the
// fixtures' writer schemas by id.
type registryServer struct {
	*httptest.Server
	requests atomic.Int64
	down     atomic.Bool // answer 503
}

// MustRegistry starts a registry serving schemas (id -> schema JSON), closed
// at cleanup.
func MustRegistry(t testing.TB, schemas map[int]string) *registryServer {
	t.Helper()
	r := &registryServer{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.down.Load() {
			http.Error(w, `{"error_code":50001,"message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		id, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/schemas/ids/"))
		s, ok := schemas[id]
		if err != nil || !ok || req.Method != http.MethodGet {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error_code":40403,"message":"Schema not found"}`)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		json.NewEncoder(w).Encode(map[string]string{"schema": s})
	}))
	t.Cleanup(r.Close)
	return r
}

// fixtureSchemas returns the writer schemas (values and keys) of the
// event-bus fixtures by id, checking that an id always names one schema.
func fixtureSchemas(t testing.TB, fixtures []fixture) map[int]string {
	t.Helper()
	out := map[int]string{}
	add := func(id int, s json.RawMessage, name string) {
		if len(s) == 0 {
			return
		}
		var c bytes.Buffer
		if err := json.Compact(&c, s); err != nil {
			t.Fatal(err)
		}
		if prev, ok := out[id]; ok && prev != c.String() {
			t.Fatalf("%s: schema id %d names two schemas", name, id)
		}
		out[id] = c.String()
	}
	for _, f := range fixtures {
		add(f.SchemaID, f.WriterSchema, f.Name)
		add(f.KeySchemaID, f.KeySchema, f.Name)
	}
	return out
}

// decoderMode is a way an event-bus message can be decoded.
type decoderMode struct {
	name     string
	dec      *consumer.Decoder
	registry *registryServer // nil: built-in schemas only
}

// decoderModes are the ways an event-bus message can be decoded: with the
// built-in schemas only, and through a registry serving the fixtures' writer
// schemas.
func decoderModes(t testing.TB, fixtures []fixture) []decoderMode {
	t.Helper()
	builtin, err := consumer.NewAvroDecoder(consumer.AvroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := MustRegistry(t, fixtureSchemas(t, fixtures))
	withRegistry, err := consumer.NewAvroDecoder(consumer.AvroOptions{RegistryURL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	return []decoderMode{
		{name: "builtin", dec: consumer.NewDecoder(builtin)},
		{name: "registry", dec: consumer.NewDecoder(withRegistry), registry: reg},
	}
}

// TestFixtures decodes every message made by the real producers and checks
// every field of every event against the fixture's expectation.
func TestFixtures(t *testing.T) {
	fixtures := loadFixtures(t)
	counts := map[string]int{}
	for _, f := range fixtures {
		counts[f.Format]++
	}
	for _, format := range []string{"eventbus", "debezium", "json"} {
		if counts[format] == 0 {
			t.Fatalf("no %s fixtures", format)
		}
	}
	schemaIDs := map[int]bool{}
	for _, f := range fixtures {
		if f.Format == "eventbus" {
			schemaIDs[f.SchemaID] = true
		}
	}
	for _, mode := range decoderModes(t, fixtures) {
		t.Run(mode.name, func(t *testing.T) {
			for _, f := range fixtures {
				t.Run(f.Format+"/"+f.Name, func(t *testing.T) {
					got, err := mode.dec.Decode(f.message(t))
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					checkDecoded(t, f, got)
				})
			}
			// Every writer schema was looked up, once.
			if r := mode.registry; r != nil && r.requests.Load() != int64(len(schemaIDs)) {
				t.Errorf("%d registry requests for %d schema ids", r.requests.Load(), len(schemaIDs))
			}
		})
	}
}

func checkDecoded(t testing.TB, f fixture, got consumer.Decoded) {
	t.Helper()
	if f.Ignored != "" {
		if len(got.Events) != 0 || got.Ignored == "" {
			t.Fatalf("want ignored (%s), got %d events, ignored %q", f.Ignored, len(got.Events), got.Ignored)
		}
		return
	}
	if got.Ignored != "" {
		t.Fatalf("ignored (%s), want %d events", got.Ignored, len(f.Expect))
	}
	if len(got.Events) != len(f.Expect) {
		t.Fatalf("%d events, want %d", len(got.Events), len(f.Expect))
	}
	for i, want := range f.Expect {
		if err := sameEvent(want, got.Events[i]); err != nil {
			t.Errorf("event %d: %v\n got  %#v\n want %v", i, err, got.Events[i], want)
		}
	}
	if f.Format == "debezium" && !strings.HasPrefix(got.Type, "debezium.") {
		t.Errorf("type %q, want debezium.<table>", got.Type)
	}
}

// expectOf renders an event in the fixtures' expect format. Fields an event
// does not carry (an empty username, a nil name) are left out, as there.
func expectOf(e projection.Event) map[string]any {
	m := map[string]any{}
	putName := func(k string, s *string) {
		if s != nil {
			m[k] = *s
		}
	}
	putUsername := func(s string) {
		if s != "" {
			m["username"] = s
		}
	}
	switch e := e.(type) {
	case projection.Enrollment:
		m["kind"], m["user_id"], m["course_id"], m["mode"] = "enrollment", e.UserID, e.CourseID, e.Mode
		m["is_active"], m["created"], m["time"] = e.Active, e.Created, e.Time
		putUsername(e.Username)
		putName("course_name", e.CourseName)
	case projection.Completion:
		m["kind"], m["user_id"], m["course_id"], m["block_id"] = "completion", e.UserID, e.CourseID, e.BlockID
		m["created"], m["time"] = e.Created, e.Time
	case projection.CourseInfo:
		m["kind"], m["course_id"], m["time"] = "course", e.CourseID, e.Time
		putName("course_name", e.Name)
		if e.MobileAvailable != nil {
			m["mobile_available"] = *e.MobileAvailable
		}
	case projection.UserInfo:
		m["kind"], m["user_id"], m["time"] = "user", e.UserID, e.Time
		putUsername(e.Username)
	case projection.Retirement:
		m["kind"], m["user_id"], m["time"] = "retirement", e.UserID, e.Time
		putUsername(e.Username)
	default:
		m["kind"] = fmt.Sprintf("%T", e)
	}
	return m
}

// sameEvent compares an expectation with an event, field by field: times as
// instants, numbers as integers, a null like an absent field.
func sameEvent(want map[string]any, e projection.Event) error {
	got := expectOf(e)
	var diffs []string
	keys := map[string]bool{}
	for k, v := range want {
		if k != "event_id" && v != nil {
			keys[k] = true
		}
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		w, g := want[k], got[k]
		switch {
		case w == nil || g == nil:
			if w != nil || g != nil {
				diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", k, g, w))
			}
		case k == "created" || k == "time":
			wt, err := time.Parse(time.RFC3339Nano, w.(string))
			if err != nil {
				return fmt.Errorf("fixture %s: %v", k, err)
			}
			gt := g.(time.Time)
			if !gt.Equal(wt) {
				diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", k, gt.Format(time.RFC3339Nano), w))
			}
			if gt.Location() != time.UTC {
				diffs = append(diffs, fmt.Sprintf("%s: not UTC", k))
			}
		case k == "user_id":
			if fmt.Sprint(g) != fmt.Sprint(w) {
				diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", k, g, w))
			}
		default:
			if g != w {
				diffs = append(diffs, fmt.Sprintf("%s: got %#v, want %#v", k, g, w))
			}
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		return fmt.Errorf("%s", strings.Join(diffs, "; "))
	}
	return nil
}

// TestFixturesCarryEverything guards the comparison itself: a fixture's
// expectation must fail against an event that differs in any field.
func TestFixturesCarryEverything(t *testing.T) {
	name := "Demo"
	yes := true
	base := []projection.Event{
		projection.Enrollment{UserID: 7, Username: "alice", CourseID: "c", CourseName: &name, Mode: "audit",
			Active: true, Created: time.Unix(1, 0).UTC(), Time: time.Unix(2, 0).UTC()},
		projection.Completion{UserID: 7, CourseID: "c", BlockID: "b", Created: time.Unix(1, 0).UTC(), Time: time.Unix(2, 0).UTC()},
		projection.CourseInfo{CourseID: "c", Name: &name, MobileAvailable: &yes, Time: time.Unix(2, 0).UTC()},
		projection.UserInfo{UserID: 7, Username: "alice", Time: time.Unix(2, 0).UTC()},
		projection.Retirement{UserID: 7, Username: "alice", Time: time.Unix(2, 0).UTC()},
	}
	for _, e := range base {
		want := map[string]any{}
		for k, v := range expectOf(e) {
			if tm, ok := v.(time.Time); ok {
				v = tm.Format(time.RFC3339Nano)
			}
			want[k] = v
		}
		if err := sameEvent(want, e); err != nil {
			t.Fatalf("%T against itself: %v", e, err)
		}
		for k := range want {
			if k == "kind" {
				continue
			}
			mutated := map[string]any{}
			for k2, v := range want {
				mutated[k2] = v
			}
			delete(mutated, k)
			if sameEvent(mutated, e) == nil {
				t.Errorf("%T: dropping %s from the expectation still matches", e, k)
			}
		}
	}
}
