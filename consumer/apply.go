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
	parts map[Position]*pendingPart
	part  struct { // the last item's partition: most items share it
		pos Position
		st  *pendingPart
	}
	behind int64 // the sum of the parts' behind, kept as items come
	failed map[Position]error
	opened time.Time          // when the first item came
	users  map[int64]struct{} // distinct users the events touch; nil: not counted
	joins  int                // enrollment events: each may add to a course's member index
}

// pendingPart is a partition's place in a batch: the next offset to read
// after it (once the batch holds one of the partition's messages) and the
// high watermark when its last messages were fetched.
type pendingPart struct {
	next, end int64
	read      bool // next is set
}

// behind is how many messages the partition was behind its high watermark
// when the batch's last messages from it were fetched.
func (pp *pendingPart) behind() int64 {
	if !pp.read {
		return 0
	}
	return max(pp.end-pp.next, 0)
}

// writes bounds the records the batch will write: one per user, one per
// enrollment (a block of a course's member index).
func (p *pending) writes() int { return len(p.users) + p.joins }

// newPending starts a batch; countWrites is whether its writes are counted.
func newPending(countWrites bool) *pending {
	p := &pending{
		batch:  Batch{Offsets: map[Position]int64{}},
		counts: map[[3]string]*int{},
		parts:  map[Position]*pendingPart{},
		failed: map[Position]error{},
	}
	if countWrites {
		p.users = map[int64]struct{}{}
	}
	return p
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
	if p.part.st == nil || it.pos != p.part.pos {
		st := p.parts[it.pos]
		if st == nil {
			st = &pendingPart{}
			p.parts[it.pos] = st
		}
		p.part.pos, p.part.st = it.pos, st
	}
	st := p.part.st
	before := st.behind()
	st.end = max(st.end, it.end)
	if it.outcome == OutcomeFailed {
		p.failed[it.pos] = it.err // the offset does not move past it
		p.behind += st.behind() - before
		return
	}
	p.batch.Events = append(p.batch.Events, it.events...)
	for _, e := range it.events {
		if p.users != nil {
			if id, ok := projection.UserOf(e); ok {
				p.users[id] = struct{}{}
			}
		}
		if _, ok := e.(projection.Enrollment); ok {
			p.joins++
		}
	}
	st.next, st.read = it.offset+1, true
	p.behind += st.behind() - before
	p.batch.Messages++
}

// offsets fills the batch's offsets from its partitions.
func (p *pending) offsets() {
	for pos, st := range p.parts {
		if st.read {
			p.batch.Offsets[pos] = st.next
		}
	}
}

func (p *pending) empty() bool { return len(p.counts) == 0 }

// applyLoop is the single writer: it collects items into batches bounded by
// size and time and commits each with its offsets.
func (c *Consumer) applyLoop(ctx context.Context) error {
	_, unbounded := c.sink.(unboundedWrites)
	next := func() *pending { return newPending(!unbounded) }
	p := next()
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
					p = next()
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
		p = next()
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
	case n >= c.cfg.CatchUpBatchSize, p.users != nil && p.writes() >= c.cfg.CatchUpMaxWrites:
		return true
	}
	return !c.catchingUp(p) || time.Since(p.opened) >= c.cfg.CatchUpWait
}

// catchingUp reports whether the batch's partitions are more than a batch
// behind the head: then a larger batch is worth its wait.
func (c *Consumer) catchingUp(p *pending) bool {
	return c.cfg.CatchUpBatchSize > c.cfg.BatchSize && p.behind > int64(c.cfg.BatchSize)
}

func (c *Consumer) flush(p *pending) error {
	p.offsets()
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
		st.end = max(st.end, p.parts[pos].end, st.next)
		c.m.position.WithLabelValues(pos.Topic, partLabel(pos.Partition)).Set(float64(st.next))
		c.m.lag.WithLabelValues(pos.Topic, partLabel(pos.Partition)).Set(float64(st.end - st.next))
	}
	for pos, err := range p.failed {
		if st := c.parts[pos]; st != nil {
			st.failed = err
		}
	}
	c.sumLag()
	c.mu.Unlock()
	c.checkCaughtUp()
	return nil
}
