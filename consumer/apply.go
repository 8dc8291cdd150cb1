package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// pending accumulates items into the next batch.
type pending struct {
	batch  Batch
	counts map[[3]string]*int // (topic, type, outcome) -> messages
	last   struct {           // the last item's counter: most items share it
		key [3]string
		n   *int
	}
	ends   map[Position]int64
	failed map[Position]error
	opened time.Time          // when the first item came
	users  map[int64]struct{} // distinct users the events touch
	joins  int                // enrollment events: each may add to a course's member index
}

// writes bounds the records the batch will write: one per user, one per
// enrollment (a course's member index).
func (p *pending) writes() int { return len(p.users) + p.joins }

func newPending() *pending {
	return &pending{
		batch:  Batch{Offsets: map[Position]int64{}},
		counts: map[[3]string]*int{},
		ends:   map[Position]int64{},
		failed: map[Position]error{},
		users:  map[int64]struct{}{},
	}
}

// behind is how many messages the batch's partitions were behind their
// high watermarks when its last messages were fetched.
func (p *pending) behind() int64 {
	var n int64
	for pos, end := range p.ends {
		if next, ok := p.batch.Offsets[pos]; ok {
			n += max(end-next, 0)
		}
	}
	return n
}

func (p *pending) add(it item) {
	if len(p.counts) == 0 {
		p.opened = time.Now()
	}
	if k := [3]string{it.pos.Topic, it.typ, it.outcome}; p.last.n == nil || k != p.last.key {
		n := p.counts[k]
		if n == nil {
			n = new(int)
			p.counts[k] = n
		}
		p.last.key, p.last.n = k, n
	}
	*p.last.n++
	p.ends[it.pos] = max(p.ends[it.pos], it.end)
	if it.outcome == OutcomeFailed {
		p.failed[it.pos] = it.err // the offset does not move past it
		return
	}
	p.batch.Events = append(p.batch.Events, it.events...)
	for _, e := range it.events {
		if id, ok := projection.UserOf(e); ok {
			p.users[id] = struct{}{}
		}
		if _, ok := e.(projection.Enrollment); ok {
			p.joins++
		}
	}
	p.batch.Offsets[it.pos] = it.offset + 1
	p.batch.Messages++
}

func (p *pending) empty() bool { return len(p.counts) == 0 }

// applyLoop is the single writer: it collects items into batches bounded by
// size and time and commits each with its offsets.
func (c *Consumer) applyLoop(ctx context.Context) error {
	p := newPending()
	t := time.NewTicker(c.cfg.BatchWait)
	defer t.Stop()
	for {
		select {
		case items := <-c.items:
			for _, it := range items {
				p.add(it)
				if c.full(p) {
					if err := c.flush(p); err != nil {
						return err
					}
					p = newPending()
				}
			}
			c.reuse(items)
			continue
		case <-t.C:
			if p.empty() || c.catchingUp(p) && time.Since(p.opened) < c.cfg.CatchUpWait {
				continue
			}
		case <-ctx.Done():
			// Commit what was read, whole; readers have stopped handing over.
			if !p.empty() {
				if err := c.flush(p); err != nil {
					return err
				}
			}
			return nil
		}
		if err := c.flush(p); err != nil {
			return err
		}
		p = newPending()
	}
}

// full reports whether a batch must be committed now: at BatchSize
// messages, or, while catching up, at CatchUpBatchSize messages or
// CatchUpMaxWrites records.
func (c *Consumer) full(p *pending) bool {
	n := p.batch.Messages
	switch {
	case n < c.cfg.BatchSize:
		return false
	case n >= c.cfg.CatchUpBatchSize, p.writes() >= c.cfg.CatchUpMaxWrites:
		return true
	}
	return !c.catchingUp(p) || time.Since(p.opened) >= c.cfg.CatchUpWait
}

// catchingUp reports whether the batch's partitions are more than a batch
// behind the head: then a larger batch is worth its wait.
func (c *Consumer) catchingUp(p *pending) bool {
	return c.cfg.CatchUpBatchSize > c.cfg.BatchSize && p.behind() > int64(c.cfg.BatchSize)
}

func (c *Consumer) flush(p *pending) error {
	start := time.Now()
	dropped, err := c.sink.Apply(p.batch)
	if err != nil {
		return fmt.Errorf("apply batch of %d messages: %w", p.batch.Messages, err)
	}
	c.m.applySeconds.Observe(time.Since(start).Seconds())
	c.m.batchSize.Observe(float64(p.batch.Messages))
	c.m.droppedRetired.Add(float64(dropped))
	for k, n := range p.counts {
		c.m.events.WithLabelValues(k[0], k[1], k[2]).Add(float64(*n))
	}
	var latest time.Time
	for _, e := range p.batch.Events {
		if t := e.EventTime(); t.After(latest) {
			latest = t
		}
	}
	if !latest.IsZero() && latest.UnixMicro() > c.lastEvent.Load() {
		c.lastEvent.Store(latest.UnixMicro())
		c.m.lastEventTime.Set(float64(latest.UnixMicro()) / 1e6)
	}

	c.mu.Lock()
	for pos, next := range p.batch.Offsets {
		st := c.parts[pos]
		if st == nil {
			st = &partition{}
			c.parts[pos] = st
		}
		st.next = max(st.next, next)
		st.end = max(st.end, p.ends[pos], st.next)
		c.m.position.WithLabelValues(pos.Topic, partLabel(pos.Partition)).Set(float64(st.next))
		c.m.lag.WithLabelValues(pos.Topic, partLabel(pos.Partition)).Set(float64(st.end - st.next))
	}
	for pos, err := range p.failed {
		if st := c.parts[pos]; st != nil {
			st.failed = err
		}
	}
	c.mu.Unlock()
	c.checkCaughtUp()
	return nil
}
