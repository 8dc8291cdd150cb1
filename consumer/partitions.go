package consumer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

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
	c.sumLag()
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
			c.sumLag()
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
