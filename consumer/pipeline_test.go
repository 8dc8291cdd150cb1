package consumer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/pipeline"
	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// MustBroker starts an in-process Kafka-protocol broker on a loopback TCP
// port with the topics seeded, closed at cleanup.
func MustBroker(t testing.TB, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func produce(t testing.TB, broker, topic string, msgs []synth.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{},
		BatchTimeout: time.Millisecond, BatchSize: 1000, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = kafka.Message{Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			out[i].Headers = append(out[i].Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
	}
	if err := w.WriteMessages(context.Background(), out...); err != nil {
		t.Fatal(err)
	}
}

type running struct {
	consumer *consumer.Consumer
	store    *store.Store
	reg      *prometheus.Registry
	stop     func() error
}

// startPipeline runs a consumer into a store at path until stop is called.
func startPipeline(t testing.TB, broker string, path string, mutate func(*consumer.Config)) *running {
	t.Helper()
	s, err := store.Open(path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumer.DefaultConfig()
	cfg.Brokers = []string{broker}
	cfg.Topics = []string{"events"}
	cfg.PollInterval = 200 * time.Millisecond
	cfg.BatchWait = 20 * time.Millisecond
	cfg.MaxWait = 50 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	c, stop := runConsumer(t, cfg, pipeline.StoreSink{Store: s}, reg)
	r := &running{consumer: c, store: s, reg: reg}
	r.stop = func() error {
		err := stop()
		s.Close()
		return err
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// runConsumer runs a consumer of cfg into sink, counting into reg, until
// stop: stop returns Run's error (once; later calls return it again), and
// leaves the readers closing in the background, as Run does. At cleanup it
// is stopped, and its readers' closes are waited for.
func runConsumer(t testing.TB, cfg consumer.Config, sink consumer.Sink, reg *prometheus.Registry) (c *consumer.Consumer, stop func() error) {
	t.Helper()
	c, err := consumer.New(cfg, sink, consumer.NewDecoder(nil), consumer.NewMetrics(reg),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var (
		once   sync.Once
		runErr error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		stop()
		c.WaitClosed()
	})
	return c, stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decodeAll turns synthetic messages into the events the reference needs,
// through the production decoder (the decoder has fixture tests of its own).
func decodeAll(t testing.TB, msgs []synth.Message) []projection.Event {
	t.Helper()
	dec := consumer.NewDecoder(nil)
	var out []projection.Event
	for _, m := range msgs {
		d, err := dec.Decode(consumer.Message{Value: m.Value})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Events...)
	}
	return out
}

func checkAnswers(t testing.TB, s *store.Store, events []projection.Event, now time.Time) int {
	t.Helper()
	model := &reference.Model{Events: events}
	checked := 0
	for id, name := range model.Usernames() {
		want := model.Status(id, now, projection.DefaultPolicy())
		got, _, err := s.Status(context.Background(), name, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("user %s: %d entries, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i].CourseID != want[i].CourseID || got[i].RecentlyActive != want[i].RecentlyActive {
				t.Fatalf("user %s entry %d: %+v, want %+v", name, i, got[i], want[i])
			}
		}
		checked++
	}
	return checked
}

// TestEndToEndThroughBroker produces synthetic Open edX traffic to a TCP
// Kafka-protocol broker, with duplicates, and checks that every user's
// answer matches the reference; then restarts the consumer and checks that it
// resumes from the stored offsets without re-applying anything.
func TestEndToEndThroughBroker(t *testing.T) {
	broker := MustBroker(t, 4, "events")
	now := time.Now().UTC()
	gen := synth.New(1, 300, 25, now)
	msgs := append(gen.Catalog(), gen.History(5000)...)
	msgs = append(msgs, msgs[100:600]...) // a producer retried: duplicates
	produce(t, broker, "events", msgs)

	path := filepath.Join(t.TempDir(), store.FileName)
	r := startPipeline(t, broker, path, nil)
	waitFor(t, "ready", 2*time.Minute, func() bool { return r.consumer.Ready() == nil })
	f, err := r.store.Freshness()
	if err != nil {
		t.Fatal(err)
	}
	if f.Applied != uint64(len(msgs)) {
		t.Fatalf("applied %d messages at readiness, want all %d", f.Applied, len(msgs))
	}
	events := decodeAll(t, msgs)
	if n := checkAnswers(t, r.store, events, now); n < 250 {
		t.Fatalf("only %d users checked", n)
	}
	applied := eventsTotal(t, r.reg, "enrollstatus.course.v1", consumer.OutcomeApplied)
	if applied != 25 {
		t.Fatalf("enrollstatus_events_total{type=course, outcome=applied} = %v, want 25", applied)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// More traffic while stopped, then resume.
	more := gen.History(1000)
	produce(t, broker, "events", more)
	r2 := startPipeline(t, broker, path, nil)
	total := uint64(len(msgs) + len(more))
	waitFor(t, "resume", 2*time.Minute, func() bool {
		f, _ := r2.store.Freshness()
		return f.Applied >= total
	})
	time.Sleep(300 * time.Millisecond) // anything re-applied would show now
	f, _ = r2.store.Freshness()
	if f.Applied != total {
		t.Fatalf("applied %d messages after restart, want exactly %d", f.Applied, total)
	}
	checkAnswers(t, r2.store, append(events, decodeAll(t, more)...), now)
}

// eventsTotal returns enrollstatus_events_total for a type and an
// outcome, summed over topics; "" matches any type or outcome.
func eventsTotal(t testing.TB, reg *prometheus.Registry, typ, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "enrollstatus_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if (typ == "" || labels["type"] == typ) && (outcome == "" || labels["outcome"] == outcome) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func poisonMessages() []synth.Message {
	good, _ := json.Marshal(map[string]any{"specversion": "1.0", "type": consumer.TypeUserRetired, "id": "1",
		"time": "2026-01-01T00:00:00Z", "data": map[string]any{"user_id": 1, "username": "x"}})
	return []synth.Message{
		{Key: []byte("k"), Value: []byte("{not json"), Headers: map[string]string{"ce_type": "garbage"}},
		{Key: []byte("k"), Value: good},
	}
}

func TestPoisonSkip(t *testing.T) {
	broker := MustBroker(t, 1, "events")
	produce(t, broker, "events", poisonMessages())
	r := startPipeline(t, broker, filepath.Join(t.TempDir(), store.FileName), nil)
	waitFor(t, "ready", 20*time.Second, func() bool { return r.consumer.Ready() == nil })
	if got := eventsTotal(t, r.reg, "unknown", consumer.OutcomeSkipped); got != 1 {
		t.Fatalf("skipped = %v, want 1", got)
	}
	offs, _ := r.store.Offsets()
	if offs[store.Partition{Topic: "events", Partition: 0}] != 2 {
		t.Fatalf("offsets %v, want events/0 at 2", offs)
	}
}

func TestPoisonFail(t *testing.T) {
	broker := MustBroker(t, 1, "events")
	produce(t, broker, "events", poisonMessages())
	r := startPipeline(t, broker, filepath.Join(t.TempDir(), store.FileName), func(c *consumer.Config) {
		c.Poison = consumer.PoisonFail
	})
	waitFor(t, "failure", 20*time.Second, func() bool {
		return eventsTotal(t, r.reg, "unknown", consumer.OutcomeFailed) == 1
	})
	time.Sleep(300 * time.Millisecond)
	if err := r.consumer.Ready(); err == nil {
		t.Fatal("ready after a poison message under policy fail")
	}
	offs, _ := r.store.Offsets()
	if offs[store.Partition{Topic: "events", Partition: 0}] != 0 {
		t.Fatalf("offsets %v: the partition moved past the poison message", offs)
	}
}

func TestPoisonDeadLetter(t *testing.T) {
	broker := MustBroker(t, 1, "events", "events-dlq")
	msgs := poisonMessages()
	produce(t, broker, "events", msgs)
	r := startPipeline(t, broker, filepath.Join(t.TempDir(), store.FileName), func(c *consumer.Config) {
		c.DeadLetterTopic = "events-dlq" // the default policy becomes dead-letter
	})
	waitFor(t, "ready", 20*time.Second, func() bool { return r.consumer.Ready() == nil })
	if got := eventsTotal(t, r.reg, "unknown", consumer.OutcomeDeadLettered); got != 1 {
		t.Fatalf("dead_lettered = %v, want 1", got)
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: "events-dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != string(msgs[0].Value) || string(m.Key) != "k" {
		t.Fatalf("dead letter %q/%q, want the original bytes", m.Key, m.Value)
	}
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["ce_type"] != "garbage" || headers["enrollstatus-source-offset"] != "0" || headers["enrollstatus-error"] == "" {
		t.Fatalf("dead letter headers %v: want the original ones plus the error and source", headers)
	}
}

func TestConfigValidate(t *testing.T) {
	c := consumer.DefaultConfig()
	err := c.Validate()
	if err == nil {
		t.Fatal("a config without brokers or topics validated")
	}
	c.Brokers, c.Topics, c.Poison = []string{"127.0.0.1:1"}, []string{"t"}, consumer.PoisonDeadLetter
	if err := c.Validate(); err == nil {
		t.Fatal("dead-letter without a topic validated")
	}
	c.DeadLetterTopic = "dlq"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestReadyWithoutBrokers: a replica restarted during a broker outage serves
// the projection it has (flagged stale) after a grace period, but only if it
// has one.
func TestReadyWithoutBrokers(t *testing.T) {
	broker := MustBroker(t, 1, "events")
	produce(t, broker, "events", poisonMessages()[1:])
	path := filepath.Join(t.TempDir(), store.FileName)
	r := startPipeline(t, broker, path, nil)
	waitFor(t, "ready", 20*time.Second, func() bool { return r.consumer.Ready() == nil })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	dead := "127.0.0.1:1" // nothing listens there
	grace := func(c *consumer.Config) {
		c.Brokers = []string{dead}
		c.ReadyWithoutBrokersAfter = 300 * time.Millisecond
	}
	r = startPipeline(t, dead, path, grace)
	if r.consumer.Ready() == nil {
		t.Fatal("ready at once without brokers")
	}
	waitFor(t, "ready after the grace period", 10*time.Second, func() bool { return r.consumer.Ready() == nil })
	if _, connected := r.consumer.Lag(); connected {
		t.Fatal("connected to a dead broker")
	}
	r.stop()

	empty := startPipeline(t, dead, filepath.Join(t.TempDir(), store.FileName), grace)
	time.Sleep(600 * time.Millisecond)
	if empty.consumer.Ready() == nil {
		t.Fatal("an empty projection turned ready without brokers")
	}
}

// TestTransactionMarker: a transactional producer ends the partition's log
// with a commit marker. kafka-go v0.4.51 hands it over like a message; it is
// ignored (not poison: under the fail policy one transaction would stop the
// partition), the messages before it are applied promptly, and the offset
// moves past it, so the partition is caught up.
//
// Were the marker hidden (a client that filters control batches), the last
// message would not be at the high watermark and the reader's BatchWait
// rule would hand it over.
func TestTransactionMarker(t *testing.T) {
	broker := MustBroker(t, 1, "events")
	msgs := synth.New(7, 20, 5, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).History(5)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("events"),
		kgo.TransactionalID("enrollstatus-txn-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	// The marker is there: the end offset is one past the last message.
	n := int64(len(msgs))
	offs, err := (&kafka.Client{Addr: kafka.TCP(broker)}).ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{"events": {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if po := offs.Topics["events"]; len(po) != 1 || po[0].Error != nil || po[0].LastOffset != n+1 {
		t.Fatalf("end offsets %+v, want %d: %d messages and a commit marker", po, n+1, n)
	}

	r := startPipeline(t, broker, filepath.Join(t.TempDir(), store.FileName), func(c *consumer.Config) {
		c.BatchWait = 50 * time.Millisecond
		c.Poison = consumer.PoisonFail
	})
	pos := store.Partition{Topic: "events", Partition: 0}
	waitFor(t, "the messages and the commit marker to be committed", 2*time.Second, func() bool {
		offs, _ := r.store.Offsets()
		return offs[pos] == n+1
	})
	// The consumer counts a batch and moves its positions just after the
	// store committed it: on a loaded machine, a moment after the wait above.
	waitFor(t, "the consumer to count the committed batch", 2*time.Second, func() bool {
		return r.consumer.Ready() == nil
	})
	for outcome, want := range map[string]float64{consumer.OutcomeApplied: float64(n), consumer.OutcomeIgnored: 1,
		consumer.OutcomeSkipped: 0, consumer.OutcomeFailed: 0} {
		if got := eventsTotal(t, r.reg, "", outcome); got != want {
			t.Errorf("%v messages %s, want %v", got, outcome, want)
		}
	}
	if err := r.consumer.Ready(); err != nil {
		t.Fatalf("not ready after the transaction: %v", err)
	}
}
