package consumer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

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
