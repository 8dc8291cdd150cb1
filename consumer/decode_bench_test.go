package consumer_test

import (
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/synth"
)

// synthMessages returns n native JSON messages of the given CloudEvents
// type, as internal/synth makes them (the demo's and the load tests' mix).
func synthMessages(b *testing.B, ceType string, n int) []consumer.Message {
	g := synth.New(1, 1000, 40, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var out []consumer.Message
	for tries := 0; len(out) < n && tries < 1_000_000; tries++ {
		m := g.Next(60)
		if m.Headers["ce_type"] != ceType {
			continue
		}
		if ceType == consumer.TypeTrackingEvent && len(m.Value) < 600 { // completions, not other tracking events
			continue
		}
		cm := consumer.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			cm.Headers = append(cm.Headers, consumer.Header{Key: k, Value: []byte(v)})
		}
		out = append(out, cm)
	}
	if len(out) < n {
		b.Fatalf("only %d messages of %s", len(out), ceType)
	}
	return out
}

func benchDecode(b *testing.B, dec *consumer.Decoder, msgs []consumer.Message) {
	var bytes int64
	for _, m := range msgs {
		bytes += int64(len(m.Value))
	}
	b.SetBytes(bytes / int64(len(msgs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d, err := dec.Decode(msgs[i%len(msgs)])
		if err != nil || len(d.Events) != 1 {
			b.Fatalf("decode: %v (%d events)", err, len(d.Events))
		}
		i++
	}
}

// BenchmarkDecodeCloudEventCompletion decodes a native JSON block
// completion (a tracking event whose data is a JSON string): most of the
// ingest mix.
func BenchmarkDecodeCloudEventCompletion(b *testing.B) {
	benchDecode(b, consumer.NewDecoder(nil), synthMessages(b, consumer.TypeTrackingEvent, 256))
}

// BenchmarkDecodeCloudEventEnrollment decodes a native JSON enrollment.
func BenchmarkDecodeCloudEventEnrollment(b *testing.B) {
	benchDecode(b, consumer.NewDecoder(nil), synthMessages(b, consumer.TypeEnrollmentCreated, 256))
}

// Avro decoding has its benchmark in avro_test.go: BenchmarkAvroDecode.
