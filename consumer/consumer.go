package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/enrollstatus/enrollstatus/projection"
)

// Position names one partition of a topic.
type Position struct {
	Topic     string
	Partition int
}

func (p Position) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Batch is what the consumer hands to its sink in one call: events and the
// offsets they were read up to, to be stored in one transaction.
type Batch struct {
	Events   []projection.Event
	Offsets  map[Position]int64 // next offset to read, per partition
	Messages int
}

// Sink stores batches atomically with their offsets and says where to resume.
// The store is the source of truth for offsets, not the broker.
type Sink interface {
	Apply(Batch) (droppedRetired int, err error)
	Positions() (map[Position]int64, error)
}

// Consumer reads every partition of the configured topics with one
// kafka-go reader each (no consumer group: each replica builds a full
// projection), decodes messages in the readers, and applies them in batches
// from a single goroutine.
type Consumer struct {
	cfg    Config
	sink   Sink
	dec    *Decoder
	log    *slog.Logger
	m      *Metrics
	client *kafka.Client
	dlq    *kafka.Writer

	items chan item

	mu     sync.Mutex
	parts  map[Position]*partition
	stored map[Position]bool  // partitions with an offset in the store at start
	target map[Position]int64 // end offsets at start-up: the catch-up goal

	caughtUp  atomic.Bool
	connected atomic.Bool
	lastEvent atomic.Int64 // Unix seconds of the newest event applied
}

type partition struct {
	next   int64 // committed next offset
	end    int64 // last known end offset (high watermark)
	failed error // poison under the fail policy
}

// item is one message after decoding, on its way to the applier.
type item struct {
	pos     Position
	offset  int64
	end     int64 // high watermark when fetched
	typ     string
	outcome string
	events  []projection.Event
	err     error // for OutcomeFailed
}

// New returns a consumer. It does not connect until Run.
func New(cfg Config, sink Sink, dec *Decoder, m *Metrics, log *slog.Logger) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:    cfg,
		sink:   sink,
		dec:    dec,
		log:    log,
		m:      m,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second},
		items:  make(chan item, 4*cfg.BatchSize),
		parts:  make(map[Position]*partition),
	}
	if cfg.EffectivePoison() == PoisonDeadLetter {
		c.dlq = &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.DeadLetterTopic,
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			Balancer:     &kafka.Hash{},
		}
	}
	return c, nil
}

// Run consumes until ctx is done or the sink fails. A batch in progress when
// ctx ends is committed whole or not at all.
func (c *Consumer) Run(ctx context.Context) error {
	positions, err := c.sink.Positions()
	if err != nil {
		return fmt.Errorf("read stored offsets: %w", err)
	}
	c.mu.Lock()
	c.stored = map[Position]bool{}
	for p, next := range positions {
		if contains(c.cfg.Topics, p.Topic) {
			c.parts[p] = &partition{next: next, end: next}
			c.stored[p] = true
		}
	}
	c.mu.Unlock()

	// The applier, the poller and the readers it starts share gctx: when one
	// fails, all stop. Readers are waited for by the poller that owns them.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.applyLoop(gctx) })
	g.Go(func() error {
		var readers errgroup.Group
		err := c.pollLoop(gctx, &readers)
		return errors.Join(err, readers.Wait())
	})
	err = g.Wait()
	if c.dlq != nil {
		c.dlq.Close()
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pollLoop discovers partitions (starting a reader for each new one) and
// reads end offsets for lag and readiness, every PollInterval.
func (c *Consumer) pollLoop(ctx context.Context, readers *errgroup.Group) error {
	started := map[Position]bool{}
	var lastWarn time.Time
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := c.poll(ctx, readers, started); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			switch {
			case c.connected.Swap(false):
				c.log.Warn("lost contact with the brokers; serving from the projection", "err", err)
				lastWarn = time.Now()
			case time.Since(lastWarn) >= time.Minute:
				c.log.Warn("brokers unreachable; retrying", "brokers", strings.Join(c.cfg.Brokers, ","), "err", err)
				lastWarn = time.Now()
			default:
				c.log.Debug("brokers unreachable", "err", err)
			}
			c.m.connected.Set(0)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Consumer) poll(ctx context.Context, readers *errgroup.Group, started map[Position]bool) error {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.cfg.Topics})
	if err != nil {
		c.m.readerErrors.WithLabelValues("metadata").Inc()
		return fmt.Errorf("metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			c.log.Warn("topic unavailable; will retry", "topic", t.Name, "err", t.Error)
			continue
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		c.m.readerErrors.WithLabelValues("list_offsets").Inc()
		return fmt.Errorf("list offsets: %w", err)
	}
	if !c.connected.Swap(true) {
		c.log.Info("connected to the brokers", "brokers", strings.Join(c.cfg.Brokers, ","))
	}
	c.m.connected.Set(1)

	c.mu.Lock()
	first := c.target == nil
	if first {
		c.target = map[Position]int64{}
	}
	var toStart []Position
	for topic, offs := range resp.Topics {
		for _, po := range offs {
			if po.Error != nil {
				continue
			}
			pos := Position{topic, po.Partition}
			st := c.parts[pos]
			if st == nil {
				st = &partition{next: 0}
				c.parts[pos] = st
			}
			st.end = max(st.end, po.LastOffset)
			if _, ok := c.target[pos]; !ok && (first || !c.caughtUp.Load()) {
				c.target[pos] = po.LastOffset
			}
			c.m.lag.WithLabelValues(topic, partLabel(po.Partition)).Set(float64(max(st.end-st.next, 0)))
			if !started[pos] {
				started[pos] = true
				toStart = append(toStart, pos)
			}
		}
	}
	c.m.partitions.Set(float64(len(started)))
	c.mu.Unlock()
	c.checkCaughtUp()

	for _, pos := range toStart {
		c.mu.Lock()
		next, stored := c.parts[pos].next, c.stored[pos]
		c.mu.Unlock()
		if !stored && !c.cfg.StartAt.IsZero() {
			if next, err = c.offsetAt(ctx, pos, c.cfg.StartAt); err != nil {
				delete(started, pos) // retried at the next poll
				return err
			}
			c.mu.Lock()
			c.parts[pos].next = next
			c.mu.Unlock()
		}
		if !first {
			c.log.Info("new partition discovered", "partition", pos.String())
		}
		readers.Go(func() error { return c.readPartition(ctx, pos, next) })
	}
	return nil
}

// offsetAt returns the first offset of pos whose timestamp is at or after t,
// or the end offset when there is none.
func (c *Consumer) offsetAt(ctx context.Context, pos Position, t time.Time) (int64, error) {
	resp, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		pos.Topic: {kafka.TimeOffsetOf(pos.Partition, t), kafka.LastOffsetOf(pos.Partition)},
	}})
	if err != nil {
		return 0, fmt.Errorf("%s: offset at %v: %w", pos, t, err)
	}
	for _, po := range resp.Topics[pos.Topic] {
		if po.Partition != pos.Partition {
			continue
		}
		if po.Error != nil {
			return 0, fmt.Errorf("%s: offset at %v: %w", pos, t, po.Error)
		}
		best := po.LastOffset
		for off := range po.Offsets {
			if off >= 0 && off < best {
				best = off
			}
		}
		c.log.Info("partition positioned by time", "partition", pos.String(), "at", t, "offset", best)
		return best, nil
	}
	return 0, fmt.Errorf("%s: offset at %v: no answer for the partition", pos, t)
}

// readPartition fetches one partition from next on, decodes, applies the
// poison policy, and hands items to the applier.
func (c *Consumer) readPartition(ctx context.Context, pos Position, next int64) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.cfg.Brokers,
		Topic:          pos.Topic,
		Partition:      pos.Partition,
		MinBytes:       c.cfg.MinBytes,
		MaxBytes:       c.cfg.MaxBytes,
		MaxWait:        c.cfg.MaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: 2 * time.Second,
		ErrorLogger:    kafka.LoggerFunc(func(msg string, args ...any) { c.readerError(pos, msg, args...) }),
	})
	defer r.Close()
	start := next
	if start == 0 {
		start = kafka.FirstOffset
	}
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("%s: set offset %d: %w", pos, start, err)
	}
	c.log.Debug("reading partition", "partition", pos.String(), "from", next)
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.m.readerErrors.WithLabelValues("fetch").Inc()
			c.log.Warn("fetch failed; retrying", "partition", pos.String(), "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		it := c.decode(ctx, pos, msg)
		select {
		case c.items <- it:
		case <-ctx.Done():
			return nil
		}
		if it.outcome == OutcomeFailed {
			return nil // the partition stops here; the service is unready
		}
	}
}

func (c *Consumer) decode(ctx context.Context, pos Position, msg kafka.Message) item {
	it := item{pos: pos, offset: msg.Offset, end: msg.HighWaterMark}
	m := Message{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Value: msg.Value, Time: msg.Time, Headers: make([]Header, len(msg.Headers))}
	for i, h := range msg.Headers {
		m.Headers[i] = Header{Key: h.Key, Value: h.Value}
	}
	dec, err := c.dec.Decode(m)
	it.typ = dec.Type
	switch {
	case err == nil && len(dec.Events) > 0:
		it.outcome, it.events = OutcomeApplied, dec.Events
	case err == nil:
		it.outcome = OutcomeIgnored
		c.log.Debug("message ignored", "partition", pos.String(), "offset", msg.Offset, "reason", dec.Ignored)
	default:
		it.outcome = c.poison(ctx, pos, msg, dec.Type, err)
		it.err = err
	}
	return it
}

// poison applies the poison policy to an undecodable message and returns the
// outcome. Every policy logs the message's coordinates and the error.
func (c *Consumer) poison(ctx context.Context, pos Position, msg kafka.Message, typ string, cause error) string {
	attrs := []any{"partition", pos.String(), "offset", msg.Offset, "type", typ, "bytes", len(msg.Value), "err", cause}
	switch c.cfg.EffectivePoison() {
	case PoisonFail:
		c.log.Error("undecodable message: partition stopped (policy fail); fix the producer or change the policy, then restart", attrs...)
		return OutcomeFailed
	case PoisonDeadLetter:
		dl := kafka.Message{Key: msg.Key, Value: msg.Value, Headers: append(append([]kafka.Header(nil), msg.Headers...),
			kafka.Header{Key: "enrollstatus-error", Value: []byte(cause.Error())},
			kafka.Header{Key: "enrollstatus-source-topic", Value: []byte(pos.Topic)},
			kafka.Header{Key: "enrollstatus-source-partition", Value: []byte(partLabel(pos.Partition))},
			kafka.Header{Key: "enrollstatus-source-offset", Value: []byte(fmt.Sprint(msg.Offset))},
		)}
		for attempt := 0; ; attempt++ {
			err := c.dlq.WriteMessages(ctx, dl)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return OutcomeDeadLettered // not committed: the message is read again after restart
			}
			c.m.readerErrors.WithLabelValues("dead_letter").Inc()
			c.log.Warn("dead-letter write failed; retrying before moving on", append(attrs, "dlq_err", err)...)
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 10*time.Second)):
			}
		}
		c.log.Warn("undecodable message copied to the dead-letter topic", append(attrs, "dead_letter_topic", c.cfg.DeadLetterTopic)...)
		return OutcomeDeadLettered
	default:
		c.log.Warn("undecodable message skipped", attrs...)
		return OutcomeSkipped
	}
}

// readerError receives kafka-go's error log lines. An offset that fell out
// of the log is the one that matters: kafka-go moves on to the first offset
// still there, so history was skipped and an operator must know.
func (c *Consumer) readerError(pos Position, msg string, args ...any) {
	text := fmt.Sprintf(msg, args...)
	if strings.Contains(text, "OffsetOutOfRange") || strings.Contains(text, "offset out of range") {
		c.m.outOfRange.WithLabelValues(pos.Topic, partLabel(pos.Partition)).Inc()
		c.log.Error("stored offset is no longer in the log (retention deleted it): messages were skipped; "+
			"rebuild the projection or restore a snapshot", "partition", pos.String(), "detail", text)
		return
	}
	c.m.readerErrors.WithLabelValues("reader").Inc()
	c.log.Debug("kafka reader", "partition", pos.String(), "detail", text)
}
