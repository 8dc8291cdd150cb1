package consumer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReaderConfig is the kafka-go configuration of the reader of one
// partition: the configured fetch sizes and client id, over connections
// that read ahead (see readAheadConn). The benchmarks' raw fetch reads
// with it too, so that it measures the same readers.
func (c Config) ReaderConfig(topic string, partition int) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:        c.Brokers,
		Topic:          topic,
		Partition:      partition,
		Dialer:         c.dialer(),
		MinBytes:       c.MinBytes,
		MaxBytes:       c.MaxBytes,
		MaxWait:        c.MaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: 2 * time.Second,
	}
}

// readPartition fetches one partition from next on, decodes, applies the
// poison policy, and hands items to the applier.
func (c *Consumer) readPartition(ctx context.Context, pos Position, next int64) error {
	rc := c.cfg.ReaderConfig(pos.Topic, pos.Partition)
	rc.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) { c.readerError(pos, msg, args...) })
	r := kafka.NewReader(rc)
	// kafka-go's Close waits for the reader's fetch in flight, which at the
	// head is a long poll of up to MaxWait: close in the background, so
	// that stopping a consumer (a bulk load that reached the head, a swap,
	// a shutdown) does not wait for it; WaitClosed does. Nothing is read
	// after this returns.
	defer c.closing.Go(func() { r.Close() })
	start := next
	if start == 0 {
		start = kafka.FirstOffset
	}
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("%s: set offset %d: %w", pos, start, err)
	}
	c.log.Debug("reading partition", "partition", pos.String(), "from", next)
	// Items go to the applier in slices of up to handOverItems, not one by
	// one: a channel operation per message cost more than a tenth of its
	// decoding. A slice goes as soon as it is full or the partition is read
	// up to its high watermark. While the reader waits for more with items in
	// hand, it waits at most BatchWait: offsets the high watermark counts but
	// no fetch returns must not hold them back (kafka-go v0.4.51 returns
	// even transaction markers, see isControlRecord; a client that hid them
	// would leave such offsets).
	var (
		headers []Header // the decoder's view of a message's headers, reused
		buf     = c.itemSlice()
		wait    struct { // bounds the wait for more while buf holds items
			ctx    context.Context
			cancel context.CancelFunc
		}
	)
	handOver := func() bool {
		if wait.cancel != nil {
			wait.cancel()
			wait.ctx, wait.cancel = nil, nil
		}
		if len(buf) == 0 {
			return true
		}
		select {
		case c.items <- buf:
			buf = c.itemSlice()
			return true
		case <-ctx.Done():
			return false
		}
	}
	defer func() {
		if wait.cancel != nil {
			wait.cancel()
		}
	}()
	for {
		fetchCtx := ctx
		if len(buf) > 0 {
			if wait.ctx == nil {
				wait.ctx, wait.cancel = context.WithTimeout(ctx, c.cfg.BatchWait)
			}
			fetchCtx = wait.ctx
		}
		msg, err := r.FetchMessage(fetchCtx)
		if err != nil {
			waited := fetchCtx.Err() != nil      // BatchWait, with items in hand
			if ctx.Err() != nil || !handOver() { // what is read goes first
				return nil
			}
			if waited {
				continue
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
		it := c.decode(ctx, pos, msg, &headers)
		buf = append(buf, it)
		if it.outcome == OutcomeFailed {
			handOver()
			return nil // the partition stops here; the service is unready
		}
		if len(buf) == cap(buf) || msg.Offset+1 >= msg.HighWaterMark {
			if !handOver() {
				return nil
			}
		}
	}
}

// handOverItems is how many items a partition reader hands to the applier
// at most at once.
const handOverItems = 256

// itemSlice returns an empty slice for handOverItems items, one the
// applier gave back if there is one.
func (c *Consumer) itemSlice() []item {
	select {
	case s := <-c.spare:
		return s
	default:
		return make([]item, 0, handOverItems)
	}
}

// reuse gives a slice of items the applier is done with back to the
// readers.
func (c *Consumer) reuse(s []item) {
	clear(s) // nothing kept alive through it
	select {
	case c.spare <- s[:0]:
	default:
	}
}

// decode decodes msg into an item; headers is scratch space for its
// headers, which the decoder reads but does not keep.
func (c *Consumer) decode(ctx context.Context, pos Position, msg kafka.Message, headers *[]Header) item {
	it := item{pos: pos, offset: msg.Offset, end: msg.HighWaterMark}
	if isControlRecord(msg) {
		it.typ, it.outcome = "control", OutcomeIgnored
		c.log.Debug("transaction marker ignored", "partition", pos.String(), "offset", msg.Offset)
		return it
	}
	*headers = (*headers)[:0]
	for _, h := range msg.Headers {
		*headers = append(*headers, Header{Key: h.Key, Value: h.Value})
	}
	m := Message{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Value: msg.Value, Time: msg.Time, Headers: *headers}
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

// isControlRecord reports whether msg is a transaction marker, which
// kafka-go (v0.4.51) hands over like any message: the control record a
// transactional producer's commit or abort leaves in the log (Kafka's
// format: a key of version 0 and type 0 (abort) or 1 (commit), both int16;
// a value of version 0 (int16) and the coordinator's epoch (int32); no
// headers). No Open edX event has that shape: as a message it would be
// undecodable, JSON or Avro.
func isControlRecord(msg kafka.Message) bool {
	k, v := msg.Key, msg.Value
	return len(k) == 4 && k[0] == 0 && k[1] == 0 && k[2] == 0 && k[3] <= 1 &&
		len(v) == 6 && v[0] == 0 && v[1] == 0 && len(msg.Headers) == 0
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
