package consumer

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// checkCaughtUp marks start-up catch-up done once every partition known at
// the first successful poll is within ReadyMaxLag (in total) of the end
// offset it had then. Once done it stays done: a later broker outage makes
// answers stale, not unavailable.
func (c *Consumer) checkCaughtUp() {
	if c.caughtUp.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.target == nil {
		return
	}
	behind := c.behindTarget()
	if behind <= c.cfg.ReadyMaxLag {
		c.caughtUp.Store(true)
		c.m.caughtUp.Set(1)
		c.log.Info("start-up catch-up done", "partitions", len(c.target), "behind", behind)
	}
}

var errPartitionFailed = errors.New("partitions stopped on an undecodable message (poison policy fail)")

// IsPartitionFailure reports whether a Ready error means a partition stopped
// for good, rather than catching up.
func IsPartitionFailure(err error) bool { return errors.Is(err, errPartitionFailed) }

// MarkCaughtUp declares start-up catch-up done without waiting: for a
// consumer taking over a projection that another one had brought up to date.
func (c *Consumer) MarkCaughtUp() {
	if !c.caughtUp.Swap(true) {
		c.m.caughtUp.Set(1)
	}
}

// Ready returns nil once start-up catch-up is done and no partition stopped
// on a poison message, else why not.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var failed []string
	for pos, st := range c.parts {
		if st.failed != nil {
			failed = append(failed, pos.String())
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("%w: %v", errPartitionFailed, failed)
	}
	if c.caughtUp.Load() {
		return nil
	}
	if c.target == nil {
		if len(c.stored) > 0 && c.cfg.ReadyWithoutBrokersAfter > 0 && !c.started.IsZero() &&
			time.Since(c.started) >= c.cfg.ReadyWithoutBrokersAfter {
			return nil // serve the projection we have; answers are flagged stale
		}
		return fmt.Errorf("not yet connected to the brokers")
	}
	behind := c.behindTarget()
	return fmt.Errorf("catching up: %d messages behind the start-up head", behind)
}

// Lag returns the messages between the applied positions and the last known
// end offsets, summed over partitions, and whether the brokers are reachable.
func (c *Consumer) Lag() (messages int64, connected bool) {
	return c.lag.Load(), c.connected.Load()
}

// sumLag stores the partitions' summed lag for Lag. c.mu is held.
func (c *Consumer) sumLag() {
	var n int64
	for _, st := range c.parts {
		n += max(st.end-st.next, 0)
	}
	c.lag.Store(n)
}

// PartitionStatus is one partition's position, for inspection.
type PartitionStatus struct {
	Position
	Next   int64
	End    int64
	Failed string
}

// Partitions returns every partition's status, sorted.
func (c *Consumer) Partitions() []PartitionStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PartitionStatus, 0, len(c.parts))
	for pos, st := range c.parts {
		ps := PartitionStatus{Position: pos, Next: st.next, End: st.end}
		if st.failed != nil {
			ps.Failed = st.failed.Error()
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// behindTarget is how many messages the partitions are behind the end
// offsets they had at the first successful poll. The caller holds c.mu.
func (c *Consumer) behindTarget() int64 {
	var behind int64
	for pos, end := range c.target {
		if st := c.parts[pos]; st != nil {
			behind += max(end-st.next, 0)
		}
	}
	return behind
}
