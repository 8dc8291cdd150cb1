package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/enrollstatus/enrollstatus/internal/jsonscan"
	"github.com/enrollstatus/enrollstatus/projection"
)

// Message is one Kafka record as the decoders see it.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time // broker or producer timestamp
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Header returns the value of the first header named key.
func (m Message) Header(key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Decoded is what one message means to the projection.
type Decoded struct {
	// Type names the message's kind for metrics and logs: a CloudEvents type,
	// "debezium.<table>", or "tombstone".
	Type string
	// Events are the facts to apply; none when the message is ignored.
	Events []projection.Event
	// Ignored, when not empty, says why a well-formed message carries nothing
	// for the projection (another tracking event, a tombstone...).
	Ignored string
}

// ErrUndecodable is wrapped by every decoding error: the message is poison
// and goes to the poison policy.
var ErrUndecodable = errors.New("undecodable message")

func undecodable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUndecodable, fmt.Sprintf(format, args...))
}

// MaxMessageBytes bounds what a decoder will look at; larger values are
// poison. Open edX events are a few hundred bytes.
const MaxMessageBytes = 1 << 20

// Decoder chooses a wire format by looking at each message, so that several
// formats can share a topic:
//
//   - Confluent framing (first byte 0x00) with a ce_type header: the Open edX
//     event bus (Avro);
//   - a JSON object with "specversion": native CloudEvents JSON;
//   - a JSON object with "payload" or "op": a Debezium change event;
//   - no value at all: a tombstone, ignored.
type Decoder struct {
	avro *AvroDecoder // nil: Avro messages are undecodable
}

// NewDecoder returns a decoder. avro may be nil when no Avro is expected.
func NewDecoder(avro *AvroDecoder) *Decoder { return &Decoder{avro: avro} }

// Decode turns a message into projection events. Every returned event is
// valid; anything else is an error wrapping ErrUndecodable.
func (d *Decoder) Decode(m Message) (Decoded, error) {
	dec, err := d.decode(m)
	if err != nil {
		return dec, err
	}
	for _, e := range dec.Events {
		if err := e.Validate(); err != nil {
			return dec, fmt.Errorf("%w: %s: %w", ErrUndecodable, dec.Type, err)
		}
	}
	return dec, nil
}

func (d *Decoder) decode(m Message) (Decoded, error) {
	switch {
	case m.Value == nil:
		return Decoded{Type: "tombstone", Ignored: "tombstone"}, nil
	case len(m.Value) == 0: // not a tombstone to Kafka, but it carries nothing either
		return Decoded{Type: "tombstone", Ignored: "empty value"}, nil
	case len(m.Value) > MaxMessageBytes:
		return Decoded{Type: "oversized"}, undecodable("value of %d bytes exceeds %d", len(m.Value), MaxMessageBytes)
	case m.Value[0] == 0x00:
		ceType, _ := m.Header("ce_type")
		if d.avro == nil {
			return Decoded{Type: typeLabel(ceType)}, undecodable("Avro message but no Avro decoder configured")
		}
		return d.avro.Decode(m)
	}
	trimmed := bytes.TrimLeft(m.Value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Decoded{Type: "unknown"}, undecodable("neither Confluent-framed Avro nor a JSON object")
	}
	if !utf8.Valid(trimmed) {
		// encoding/json would quietly turn the bad bytes into U+FFFD and
		// change an identifier; JSON must be UTF-8 (RFC 8259).
		return Decoded{Type: "unknown"}, undecodable("JSON that is not valid UTF-8")
	}
	// The bulk of a stream: CloudEvents the fast path takes whole, validating
	// them as it reads (it takes no invalid JSON, and nothing that probeKind
	// would not call a CloudEvent).
	if dec, ok, err := fastCloudEvent(m.Value); ok {
		return dec, err
	}
	if !jsonscan.Valid(trimmed) {
		return Decoded{Type: "unknown"}, invalidJSON(m.Value)
	}
	switch probeKind(trimmed) {
	case jsonCloudEvent:
		return slowCloudEvent(m)
	case jsonDebezium:
		return decodeDebezium(m)
	}
	return Decoded{Type: "unknown"}, errNeitherJSON
}

var errNeitherJSON = undecodable("JSON object that is neither a CloudEvent nor a Debezium change event")

// invalidJSON says where b, which is not valid JSON, goes wrong, as
// encoding/json finds it.
func invalidJSON(b []byte) error {
	var raw json.RawMessage
	err := json.Unmarshal(b, &raw)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return undecodable("invalid JSON at byte %d: %v", syntax.Offset, err)
	case err != nil:
		return undecodable("invalid JSON: %v", err)
	}
	return undecodable("invalid JSON")
}

// typeLabel bounds the cardinality of the type label of metrics: only known
// types keep their name.
func typeLabel(t string) string {
	if _, ok := knownTypes[t]; ok {
		return t
	}
	if t == "" {
		return "unknown"
	}
	return "other"
}
