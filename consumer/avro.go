package consumer

import (
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollstatus/enrollstatus/projection"
)

// The schemas of the supported event types, as openedx-events generates them:
// avroschemas/<ce_type>.avsc.
//
//go:embed avroschemas/*.avsc
var builtinSchemaFiles embed.FS

// builtinMinorVersion is the openedx-events minor version of every built-in
// schema (openedx-events 11.2.0: all five signals are at minor version 0).
const builtinMinorVersion = 0

// confluentHeaderLen is the Confluent framing: magic byte 0x00 and a 4-byte
// big-endian schema id.
const confluentHeaderLen = 5

// AvroOptions configures an AvroDecoder. The zero value decodes with the
// built-in schemas only.
type AvroOptions struct {
	// RegistryURL is the base URL of a Confluent-compatible schema registry,
	// e.g. http://schema-registry:8081. When set, the writer schema of every
	// message is looked up by the id in its framing (GET /schemas/ids/{id})
	// and resolved against the built-in schema of its ce_type, so that records
	// written with a newer schema decode exactly. Empty: built-in schemas only.
	RegistryURL string
	// RegistryUsername and RegistryPassword, when set, are sent as HTTP basic
	// authentication.
	RegistryUsername string
	RegistryPassword string
	// HTTPClient makes the registry requests; nil means a client of its own.
	HTTPClient *http.Client
	// RegistryTimeout bounds one registry request; 0 means 5s. While a lookup
	// is in flight the partition that needs it waits, so keep it short.
	RegistryTimeout time.Duration
	// RegistryRetryAfter is how long a failed lookup is remembered before the
	// registry is asked again; 0 means 30s. Meanwhile messages decode with the
	// built-in schemas, so an outage costs one timeout per period, not one
	// per message.
	RegistryRetryAfter time.Duration
	// Logger receives warnings (registry unreachable, newer minor versions);
	// nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the decoder's metrics.
	Registerer prometheus.Registerer
	// Now replaces time.Now for the registry's negative cache (tests).
	Now func() time.Time
}

// AvroDecoder decodes the Open edX event bus as edx-event-bus-kafka writes it:
// Confluent framing around Avro binary of a CloudEvent record, the event type
// in the ce_type header, the event time in ce_time.
//
// It decodes without a schema registry, with the built-in schemas of the
// supported types. A record written with a newer minor version of its type
// (ce_minorversion greater than the built-in one), whose new optional fields
// openedx-events appends to the data, then decodes with its trailing fields
// skipped; trailing bytes are poison otherwise. That is only sound while new
// fields are appended at the end of the record, so configure a registry when
// producers run newer openedx-events releases: the writer schema is then
// resolved against the built-in one field by field.
//
// An AvroDecoder is safe for concurrent use.
type AvroDecoder struct {
	builtin  map[string]*builtinType
	registry *registry // nil: no registry
	readers  sync.Pool
	log      *slog.Logger
	metrics  avroMetrics
	// warnedMinor remembers the types whose newer minor version was logged.
	warnedMinor sync.Map
}

// builtinType is a supported event type and its reader schema.
type builtinType struct {
	ceType string
	family avroFamily
	schema avro.Schema
}

type avroFamily int

const (
	familyEnrollment avroFamily = iota
	familyCatalog
	familyTracking
)

var avroFamilies = map[string]avroFamily{
	TypeEnrollmentCreated:    familyEnrollment,
	TypeEnrollmentChanged:    familyEnrollment,
	TypeUnenrollmentComplete: familyEnrollment,
	TypeCatalogInfoChanged:   familyCatalog,
	TypeTrackingEvent:        familyTracking,
}

type avroMetrics struct {
	fallback     prometheus.Counter
	newerMinor   *prometheus.CounterVec
	registryReqs *prometheus.CounterVec
}

func newAvroMetrics(reg prometheus.Registerer) (avroMetrics, error) {
	m := avroMetrics{
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "enrollstatus_avro_builtin_fallback_total",
			Help: "Event-bus messages decoded with the built-in schema because the schema registry could not give their writer schema.",
		}),
		newerMinor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollstatus_avro_newer_minor_version_total",
			Help: "Event-bus messages of a newer minor version than the built-in schema decoded without their writer schema (trailing fields skipped), by type.",
		}, []string{"type"}),
		registryReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollstatus_schema_registry_requests_total",
			Help: "Schema registry lookups by result (ok, not_found, invalid, error).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.fallback, m.newerMinor, m.registryReqs} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("register Avro metrics: %w", err)
		}
	}
	return m, nil
}

// NewAvroDecoder parses the built-in schemas and, when opts.RegistryURL is
// set, prepares the registry client. It does not contact the registry.
func NewAvroDecoder(opts AvroOptions) (*AvroDecoder, error) {
	// Bounds so that a hostile length prefix cannot allocate more than a
	// message could hold.
	api := avro.Config{MaxByteSliceSize: MaxMessageBytes, MaxSliceAllocSize: MaxMessageBytes}.Freeze()
	a := &AvroDecoder{builtin: map[string]*builtinType{}, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	for ceType, family := range avroFamilies {
		b, err := builtinSchemaFiles.ReadFile(path.Join("avroschemas", ceType+".avsc"))
		if err != nil {
			return nil, fmt.Errorf("built-in Avro schema of %s: %w", ceType, err)
		}
		s, err := parseSchema(b)
		if err != nil {
			return nil, fmt.Errorf("built-in Avro schema of %s: %w", ceType, err)
		}
		if want := ceType + ".CloudEvent"; fullName(s) != want {
			return nil, fmt.Errorf("built-in Avro schema of %s names %s, want %s", ceType, fullName(s), want)
		}
		a.builtin[ceType] = &builtinType{ceType: ceType, family: family, schema: s}
	}
	m, err := newAvroMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	if opts.RegistryURL != "" {
		r, err := newRegistry(opts, a.log, m.registryReqs)
		if err != nil {
			return nil, err
		}
		a.registry = r
	}
	return a, nil
}

// parseSchema parses a schema on a cache of its own: schemas of different
// types and versions reuse the same names (CloudEvent, UserData...), which
// must not leak from one into another through hamba's default cache.
func parseSchema(b []byte) (avro.Schema, error) {
	return avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
}

func fullName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// Decode decodes one event-bus message.
func (a *AvroDecoder) Decode(m Message) (Decoded, error) {
	ceType, _ := m.Header("ce_type")
	dec := Decoded{Type: typeLabel(ceType)}
	if ceType == "" {
		return dec, undecodable("Avro message without a ce_type header")
	}
	if len(m.Value) < confluentHeaderLen || m.Value[0] != 0 {
		return dec, undecodable("%s: value of %d bytes is not Confluent-framed Avro", dec.Type, len(m.Value))
	}
	schemaID := binary.BigEndian.Uint32(m.Value[1:confluentHeaderLen])
	body := m.Value[confluentHeaderLen:]
	ceID, _ := m.Header("ce_id")
	where := func() string { // only on failure: no cost per message
		return fmt.Sprintf("%s (ce_id %q, schema id %d)", dec.Type, truncate(ceID, 64), schemaID)
	}
	fail := func(format string, args ...any) (Decoded, error) {
		return dec, undecodable("%s: %s", where(), fmt.Sprintf(format, args...))
	}
	failWith := func(err error) (Decoded, error) {
		if errors.Is(err, ErrUndecodable) {
			return dec, fmt.Errorf("%s: %w", where(), err)
		}
		return fail("%v", err)
	}

	bt, ok := a.builtin[ceType]
	if !ok {
		if ceType == TypeCourse || ceType == TypeUserRetired {
			// Our own types are native JSON only; dropping a retirement
			// silently would be worse than stopping on it.
			return fail("this type is sent as native JSON, not Avro")
		}
		dec.Ignored = fmt.Sprintf("unknown type %q", truncate(ceType, 100))
		return dec, nil
	}
	minor := builtinMinorVersion
	if s, ok := m.Header("ce_minorversion"); ok && s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return fail("ce_minorversion %q is not a version number", truncate(s, 20))
		}
		minor = v
	}
	var at time.Time
	if s, ok := m.Header("ce_time"); ok {
		t, err := ParseTime(s)
		if err != nil {
			return fail("ce_time: %v", err)
		}
		at = t
	}

	schema, exact, err := a.readerSchema(bt, schemaID)
	if err != nil {
		return fail("%v", err)
	}
	allowTrailing := !exact && minor > builtinMinorVersion
	read := func(v any) error {
		trailing, err := a.read(schema, body, v)
		switch {
		case err != nil:
			return err
		case trailing && exact:
			return errors.New("bytes left after the record read with its writer schema")
		case trailing && !allowTrailing:
			return fmt.Errorf("bytes left after the record, and ce_minorversion %d is not newer than the built-in schema's (%d)", minor, builtinMinorVersion)
		case trailing:
			a.noteNewerMinor(bt.ceType, minor)
		}
		return nil
	}

	var e projection.Event
	switch bt.family {
	case familyEnrollment:
		var r avroEnrollment
		if err := read(&r); err != nil {
			return fail("%v", err)
		}
		if at.IsZero() {
			return fail("no ce_time header")
		}
		d, err := r.data()
		if err != nil {
			return fail("%v", err)
		}
		if e, err = enrollmentEvent(ceType, d, at); err != nil {
			return failWith(err)
		}
	case familyCatalog:
		var r avroCatalogInfo
		if err := read(&r); err != nil {
			return fail("%v", err)
		}
		if at.IsZero() {
			return fail("no ce_time header")
		}
		c := r.CatalogInfo
		e = projection.CourseInfo{CourseID: c.CourseKey, Name: &c.Name, Time: at}
	case familyTracking:
		var r avroTrackingEvent
		if err := read(&r); err != nil {
			return fail("%v", err)
		}
		t := r.TrackingLog
		if t.Name != CompletionEventName {
			dec.Ignored = fmt.Sprintf("tracking event %q", truncate(t.Name, 100))
			return dec, nil
		}
		// encoding/json would turn bad bytes into U+FFFD, changing an id.
		if !utf8.ValidString(t.Data) {
			return fail("tracking_log.data is not valid UTF-8")
		}
		if !at.IsZero() { // the JSON fast path first, as for a CloudEvent's
			if comp, ok := fastCompletionText(t.Data, at); ok {
				dec.Events = []projection.Event{comp}
				return dec, nil
			}
		}
		d := trackingLogData{Name: t.Name, Data: json.RawMessage(t.Data)}
		if at.IsZero() { // the producer always sets ce_time; the log's own time will do
			ts, err := ParseTime(t.Timestamp)
			if err != nil {
				return fail("tracking_log.timestamp: %v", err)
			}
			d.Timestamp = flexTime(ts)
		}
		if e, err = trackingEvent(d, at); err != nil {
			return failWith(err)
		}
	}
	dec.Events = []projection.Event{e}
	return dec, nil
}

// readerSchema returns the schema to read a record of type bt written with
// schemaID: resolved from the writer schema (exact), or the built-in one when
// there is no registry or it cannot tell.
func (a *AvroDecoder) readerSchema(bt *builtinType, schemaID uint32) (schema avro.Schema, exact bool, err error) {
	if a.registry != nil {
		s, err := a.registry.resolved(bt, schemaID)
		switch {
		case err == nil:
			return s, true, nil
		case !errors.Is(err, errRegistryUnavailable):
			return nil, false, err
		}
		a.metrics.fallback.Inc()
	}
	return bt.schema, false, nil
}

// read decodes one record of schema from body into v, and reports whether
// bytes were left after it. Unlike hamba's Unmarshal, a record cut short is an
// error.
func (a *AvroDecoder) read(schema avro.Schema, body []byte, v any) (trailing bool, err error) {
	r := a.readers.Get().(*avro.Reader)
	defer func() {
		r.Reset(nil)
		r.Error = nil
		a.readers.Put(r)
	}()
	r.Reset(body)
	r.Error = nil
	r.ReadVal(schema, v)
	if r.Error != nil {
		if errors.Is(r.Error, io.EOF) || errors.Is(r.Error, io.ErrUnexpectedEOF) {
			return false, errors.New("record cut short")
		}
		return false, r.Error
	}
	r.Peek() // sets r.Error to io.EOF at the end of body
	return r.Error == nil, nil
}

func (a *AvroDecoder) noteNewerMinor(ceType string, minor int) {
	a.metrics.newerMinor.WithLabelValues(ceType).Inc()
	if _, seen := a.warnedMinor.LoadOrStore(ceType, true); !seen {
		a.log.Warn("event-bus records of a newer minor version than the built-in schema: decoding the known fields and skipping the rest; configure a schema registry or update enrollstatus",
			"type", ceType, "minor_version", minor, "built_in_minor_version", builtinMinorVersion)
	}
}

// The wire shapes of the supported records, only the fields the projection
// uses; hamba skips the others.

type avroEnrollment struct {
	Enrollment struct {
		User struct {
			ID  int64 `avro:"id"`
			PII struct {
				Username string `avro:"username"`
			} `avro:"pii"`
		} `avro:"user"`
		Course struct {
			CourseKey   string `avro:"course_key"`
			DisplayName string `avro:"display_name"`
		} `avro:"course"`
		Mode         string `avro:"mode"`
		IsActive     bool   `avro:"is_active"`
		CreationDate string `avro:"creation_date"`
	} `avro:"enrollment"`
}

// data converts the record to the shape the JSON format decodes into, so that
// both go through enrollmentEvent.
func (r *avroEnrollment) data() (enrollmentData, error) {
	e := &r.Enrollment
	created, err := ParseTime(e.CreationDate)
	if err != nil {
		return enrollmentData{}, fmt.Errorf("enrollment.creation_date: %w", err)
	}
	var d enrollmentData
	d.User.ID = flexInt(e.User.ID)
	d.User.PII = &userPII{Username: e.User.PII.Username}
	d.Course.CourseKey = e.Course.CourseKey
	d.Course.DisplayName = &e.Course.DisplayName
	d.Mode = e.Mode
	d.IsActive = &e.IsActive
	d.CreationDate = flexTime(created)
	return d, nil
}

type avroCatalogInfo struct {
	CatalogInfo struct {
		CourseKey string `avro:"course_key"`
		Name      string `avro:"name"`
	} `avro:"catalog_info"`
}

type avroTrackingEvent struct {
	TrackingLog struct {
		Name      string `avro:"name"`
		Timestamp string `avro:"timestamp"`
		Data      string `avro:"data"` // JSON text
	} `avro:"tracking_log"`
}
