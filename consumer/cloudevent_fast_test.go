package consumer

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/enrollstatus/enrollstatus/internal/testcorpus"
	"github.com/enrollstatus/enrollstatus/projection"
)

// fastPathCorpus is native JSON as the generator and the fixtures make it,
// and the shapes the fast path must leave to encoding/json.
func fastPathCorpus(t testing.TB) [][]byte {
	out, err := testcorpus.NativeJSON()
	if err != nil {
		t.Fatal(err)
	}
	const completion = `{"user_id": 7, "course_id": "course-v1:edX+D+1", "block_id": "block-v1:edX+D+1+type@problem+block@x", "created": "2026-01-02T03:04:05.123456+00:00"}`
	tracking := func(env, data string) []byte {
		return []byte(`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","id":"1","source":"s","time":"2026-01-02T03:04:05Z"` +
			env + `,"data":{"tracking_log":{"name":"edx.completion.block_completion.changed","timestamp":"2026-01-02T03:04:05Z","data":` + data + `}}}`)
	}
	quoted := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	for _, v := range []string{
		string(tracking("", completion)),
		string(tracking("", quoted(completion))),
		string(tracking(`,"Time":"2026-01-03T00:00:00Z"`, completion)),
		string(tracking(`,"time":null`, completion)),
		string(tracking(`,"extra":{"a":[1,{"b":"}"}],"c":"\"]"}`, completion)),
		string(tracking("", `{"user_id":"42","course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":4.2,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":null,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":"x","course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"User_Id":5,"user_id":6,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":5,"user_id":6,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":5,"course_id":"c\u00e9","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":5,"course_id":"c","block_id":"b","created":"yesterday"}`)),
		string(tracking("", `{"user_id":99999999999999999999,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", quoted(`{"user_id":5,"course_id":"c\u00e9","block_id":"b","created":"2026-01-02"}`))),
		string(tracking("", quoted(`{"user_id":5} trailing`))),
		string(tracking("", quoted(`{"user_id":5,"course_id":"a\tb","block_id":"b","created":"2026-01-02"}`))),
		string(tracking("", `null`)),
		string(tracking("", `[1,2]`)),
		string(tracking("", `"not json"`)),
		string(tracking("", completion)) + "\x00", // NUL after the event is no whitespace
		string(tracking("", completion)) + " \x00 ",
		string(tracking("", quoted(completion+"\x00"))),
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","time":"2026-01-02T03:04:05Z","data":{"tracking_log":{"name":"edx.video.played","timestamp":"2026-01-02T03:04:05Z","data":"{}"}}}`,
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","data":{"tracking_log":{"name":"edx.completion.block_completion.changed","timestamp":"2026-01-02T03:04:05Z","data":{"user_id":1,"course_id":"c","block_id":"b","created":"2026-01-01"}}}}`,
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","data":{"Tracking_Log":{"name":"x"}}}`,
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","data":{}}`,
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","data":{"tracking_log":{"name":"x","timestamp":"bad"}}}`,
		`{"sp\u0065cversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","SpecVersion":"0.3","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","type":"other","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"},"data":{"course_key":"d"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":null}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":"x"}`,
		`{"specversion":"0.3","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":5,"data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","id":5,"time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","ſource":"x","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}}`,
		`{"specversion":"1.0","type":"enrollstatus.user.retired.v1","time":"2026-01-02T03:04:05Z","data":{"user_id":"12","username":"a"}}`,
		`{"specversion":"1.0","type":"enrollstatus.something","data":{}}`,
		` { "specversion" : "1.0" , "type" : "enrollstatus.course.v1" , "time" : "2026-01-02T03:04:05Z" , "data" : { "course_key" : "c" , "display_name" : "N" } } `,
		`{"specversion":"1.0"}`,
		`{}`,
		// Data read in place as the shape its first key names, then wanted
		// as another by the type.
		`{"data":{"tracking_log":{"name":"edx.video.played","timestamp":"2026-01-02T03:04:05Z","data":"{}"}},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"org.openedx.learning.course.enrollment.created.v1"}`,
		`{"data":{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true}},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"org.openedx.analytics.tracking.event.emitted.v1"}`,
		`{"data":{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true}},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"enrollstatus.course.v1"}`,
		`{"data":{"tracking_log":{"name":"x"},"course_key":"c"},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"enrollstatus.course.v1"}`,
		`{"data":{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true}},"specversion":"1.0","type":"org.openedx.learning.course.enrollment.created.v1"}`,
		`{"data":{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true},"enrollment":null},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"org.openedx.learning.course.enrollment.created.v1"}`,
		`{"data":{"tracking_log":{"name":"edx.video.played","timestamp":"2026-01-02T03:04:05Z","data":"{}"},]},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"org.openedx.analytics.tracking.event.emitted.v1"}`,
		`{"data":{"enrollment":{"user":{"id":08},"course":{"course_key":"c"},"is_active":true}},"specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"org.openedx.learning.course.enrollment.created.v1"}`,
		// Invalid JSON, each in a place the fast path reads or skips.
		string(tracking("", completion)) + ` x`,
		string(tracking("", completion)) + `}`,
		string(tracking(`,"extra":01`, completion)),
		string(tracking(`,"extra":-`, completion)),
		string(tracking(`,"extra":1.`, completion)),
		string(tracking(`,"extra":[1,]`, completion)),
		string(tracking(`,"extra":{"a":1,}`, completion)),
		string(tracking(`,"extra":{"a" 1}`, completion)),
		string(tracking(`,"extra":tru`, completion)),
		string(tracking(`,"extra":"a\qb"`, completion)),
		string(tracking(`,"extra":"a`+"\t"+`b"`, completion)),
		string(tracking(`,"extra":"\u12"`, completion)),
		string(tracking(`,"extra":{"a":[1}]}`, completion)),
		string(tracking("", `{"user_id":01,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":-,"course_id":"c","block_id":"b","created":"2026-01-02"}`)),
		string(tracking("", `{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02",}`)),
		string(tracking("", `{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02"]`)),
		string(tracking("", `{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02","x":[}`)),
		string(tracking("", quoted(`{"user_id":01,"course_id":"c","block_id":"b","created":"2026-01-02"}`))),
		string(tracking("", quoted(`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02","x":nul}`))),
		string(tracking("", `"{\"user_id\":7,\"course_id\":\"c\",\"block_id\":\"b\",\"created\":\"2026-01-02\"}\x"`)),
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","time":"2026-01-02T03:04:05Z","data":{"tracking_log":{"name":"edx.video.played","timestamp":"2026-01-02T03:04:05Z","data":"{}"},]}}`,
		`{"specversion":"1.0","type":"org.openedx.analytics.tracking.event.emitted.v1","time":"2026-01-02T03:04:05Z","data":{"tracking_log":{"name":"edx.video.played","timestamp":"2026-01-02T03:04:05Z","data":"{}"}]}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c",}}`,
		`{"specversion":"1.0","type":"enrollstatus.something","data":{"a":01}}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c"}`,
		`{"specversion":"1.0","type":"enrollstatus.course.v1","time":"2026-01-02T03:04:05Z","data":{"course_key":"c\\"}}`,
	} {
		out = append(out, []byte(v))
	}
	enrollment := func(typ, data string) string {
		return `{"specversion":"1.0","type":"org.openedx.learning.course.` + typ + `","id":"1","source":"s","time":"2026-01-02T03:04:05Z","data":` + data + `}`
	}
	const user = `"user":{"id":7,"is_active":true,"pii":{"username":"ann","email":"a@x"}}`
	const course = `"course":{"course_key":"course-v1:edX+D+1","display_name":"Démo \u0026 <b>"}`
	for _, v := range []string{
		enrollment("enrollment.created.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"audit","is_active":true,"creation_date":"2026-01-01T00:00:00+00:00"}}`),
		enrollment("enrollment.changed.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"verified","is_active":false,"creation_date":"2026-01-01 00:00:00"}}`),
		enrollment("unenrollment.completed.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"audit","creation_date":null}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"audit","creation_date":"2026-01-01"}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{`+user+`,`+course+`,"mode":null,"is_active":null,"creation_date":"2026-01-01"}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":null,"course":null,"mode":"audit","is_active":true,"creation_date":"2026-01-01"}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":"8","pii":null},"course":{"course_key":"c","display_name":null},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8,"pii":{}},"course":{"course_key":"c","display_name":""},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8,"pii":{"username":null}},"course":{"course_key":null},"is_active":false}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8,"pii":{"username":"a\u00e9"}},"course":{"course_key":"c"},"is_active":"yes"}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":1}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true,"is_active":false}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"Is_Active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c","display_name":"\ud800"},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":5},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":[],"course":{"course_key":"c"},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":null}`),
		enrollment("enrollment.created.v1", `{"enrollment":{}}`),
		enrollment("enrollment.created.v1", `{"enrollment":"x"}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true,"creation_date":"soon"}}`),
		`{"specversion":"1.0","type":"org.openedx.learning.course.enrollment.created.v1","data":{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true}}}`,
		// Invalid JSON.
		enrollment("enrollment.created.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"audit","is_active":true,"creation_date":"2026-01-01T00:00:00+00:00",}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{`+user+`,`+course+`,"mode":"audit","is_active":truex,"creation_date":"2026-01-01T00:00:00+00:00"}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":08},"course":{"course_key":"c"},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8,"pii":{"username":"a\x"}},"course":{"course_key":"c"},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c","display_name":"a`+"\n"+`"},"is_active":true}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true}}}`),
		enrollment("enrollment.created.v1", `{"enrollment":{"user":{"id":8},"course":{"course_key":"c"},"is_active":true,"x":[1 2]}}`),
	} {
		out = append(out, []byte(v))
	}
	return out
}

// checkFastPath fails when the fast path takes what is not valid JSON, or
// decodes v differently from encoding/json; it reports whether the fast
// path took v.
func checkFastPath(t testing.TB, v []byte) bool {
	t.Helper()
	if !utf8.Valid(v) { // Decoder.decode checks before the fast path
		return false
	}
	fast, ok, ferr := fastCloudEvent(v)
	if !ok {
		return false
	}
	if !json.Valid(v) {
		t.Fatalf("%s\nthe fast path took invalid JSON", v)
	}
	if probeKind(v) != jsonCloudEvent {
		t.Fatalf("%s\nthe fast path took what is not a CloudEvent", v)
	}
	slow, serr := slowCloudEvent(Message{Value: v})
	if (ferr == nil) != (serr == nil) || ferr != nil && ferr.Error() != serr.Error() {
		t.Fatalf("%s\nfast error %v, slow error %v", v, ferr, serr)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s\nfast %#v\nslow %#v", v, fast, slow)
	}
	return true
}

func TestCloudEventFastPathAgrees(t *testing.T) {
	took, synthTook := 0, 0
	corpus := fastPathCorpus(t)
	for i, v := range corpus {
		if checkFastPath(t, v) {
			took++
			if i < 2020 {
				synthTook++
			}
		}
	}
	// The fast path must actually serve the generator's traffic.
	if synthTook < 2000 {
		t.Errorf("the fast path took %d of the generator's 2020 messages", synthTook)
	}
	t.Logf("fast path took %d of %d messages", took, len(corpus))
}

func FuzzCloudEventFastPath(f *testing.F) {
	for _, v := range fastPathCorpus(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) { checkFastPath(t, v) })
}

// TestParseTimeFastAgrees: whatever parseTimeFast takes, ParseTime reads
// to the same time (==, so the same location and representation too);
// the canonical forms are taken.
func TestParseTimeFastAgrees(t *testing.T) {
	inputs := []string{
		"2026-11-17T18:15:25.571418+00:00", "2026-11-17T18:15:25.571418Z", "2026-11-17T18:15:25Z",
		"2026-11-17T18:15:25.5+05:30", "2026-11-17T18:15:25.123456789-08:00", "2024-02-29T00:00:00Z",
		"2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-11-17T24:00:00Z", "2026-11-17T23:60:00Z", "2026-11-17T23:59:60Z", "2026-11-17t18:15:25Z",
		"2026-11-17T18:15:25z", "2026-11-17T18:15:25.Z", "2026-11-17T18:15:25.1234567890Z",
		"2026-11-17T18:15:25+24:00", "2026-11-17T18:15:25+23:60", "2026-11-17T18:15:25-00:00",
		"2026-11-17T18:15:25+0000", "2026-11-17 18:15:25Z", " 2026-11-17T18:15:25Z", "2026-11-17T18:15:25Z ",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-11-17T18:15:25,5Z", "+026-11-17T18:15:25Z",
		"2026-1-17T18:15:25Z", "2026-11-17T18:15:25.5+00:00x", "2026-11-17",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		d := time.Date([]int{1900 + rng.IntN(300), rng.IntN(10000)}[rng.IntN(2)], time.Month(1+rng.IntN(12)), 1+rng.IntN(31), rng.IntN(24), rng.IntN(60), rng.IntN(60),
			rng.IntN(1e9), time.FixedZone("", (rng.IntN(48)-24)*1800))
		layout := []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05.000000-07:00", "2006-01-02T15:04:05.000Z07:00"}[rng.IntN(4)]
		inputs = append(inputs, d.Format(layout))
	}
	taken := 0
	for _, in := range inputs {
		fast, ok := parseTimeFast([]byte(in))
		if !ok {
			continue
		}
		taken++
		slow, err := ParseTime(in)
		if err != nil || fast != slow {
			t.Fatalf("%q: fast %v, ParseTime %v (%v)", in, fast, slow, err)
		}
	}
	if taken < 20000 {
		t.Fatalf("the fast path took %d of %d canonical times", taken, len(inputs))
	}
}

// checkFastCompletion fails when fastCompletionText takes data that
// trackingEvent (the event bus's slow path) refuses or reads differently.
func checkFastCompletion(t testing.TB, data string) bool {
	t.Helper()
	if !utf8.ValidString(data) { // the Avro decoder checks before
		return false
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fast, ok := fastCompletionText(data, at)
	if !ok {
		return false
	}
	slow, err := trackingEvent(trackingLogData{Name: CompletionEventName, Data: json.RawMessage(data)}, at)
	if err != nil || !reflect.DeepEqual(projection.Event(fast), slow) {
		t.Fatalf("%q\nfast %#v\nslow %#v (%v)", data, fast, slow, err)
	}
	return true
}

func completionDataCorpus() []string {
	quoted := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var out []string
	for _, d := range []string{
		`{"user_id": 7, "course_id": "course-v1:edX+D+1", "block_id": "block-v1:edX+D+1+type@problem+block@x", "created": "2026-01-02T03:04:05.123456+00:00"}`,
		`{"user_id":"42","course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":4.2,"course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":null,"course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"User_Id":5,"user_id":6,"course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":5,"user_id":6,"course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":5,"course_id":"c\u00e9","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":01,"course_id":"c","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02",}`,
		`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02"} x`,
		`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02","extra":[1,{"a":"}"}]}`,
		`{"user_id":7,"course_id":"a` + "\t" + `b","block_id":"b","created":"2026-01-02"}`,
		`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02"}` + "\x00", // NUL is no whitespace
		`{"user_id":7,"course_id":"c","block_id":"b","created":"2026-01-02"} ` + "\x00 ",
	} {
		out = append(out, d, quoted(d), " "+d, quoted(d)+" ", `"`+d)
	}
	return append(out, `null`, `[]`, `""`, `"x"`, `"\u0022"`, ``, `{}`, `"{}"`)
}

func TestFastCompletionAgrees(t *testing.T) {
	took := 0
	for _, d := range completionDataCorpus() {
		if checkFastCompletion(t, d) {
			took++
		}
	}
	if took < 5 {
		t.Fatalf("the fast path took only %d completions", took)
	}
}

func FuzzFastCompletion(f *testing.F) {
	for _, d := range completionDataCorpus() {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data string) { checkFastCompletion(t, data) })
}
