package consumer

import (
	"errors"
	"fmt"
	"time"
)

// PoisonPolicy says what happens to a message that cannot be decoded.
type PoisonPolicy string

const (
	// PoisonFail stops consuming the message's partition (its offset does not
	// move) and makes the service unready until an operator intervenes.
	PoisonFail PoisonPolicy = "fail"
	// PoisonSkip logs the message's coordinates and error, counts it, and
	// moves on.
	PoisonSkip PoisonPolicy = "skip"
	// PoisonDeadLetter copies the original key, value and headers, plus the
	// error and the source coordinates as headers, to the dead-letter topic,
	// and moves on only once the broker acknowledged the copy.
	PoisonDeadLetter PoisonPolicy = "dead-letter"
)

// ParsePoisonPolicy parses a policy name; "" means the default.
func ParsePoisonPolicy(s string) (PoisonPolicy, error) {
	switch p := PoisonPolicy(s); p {
	case "", PoisonFail, PoisonSkip, PoisonDeadLetter:
		return p, nil
	}
	return "", fmt.Errorf("poison policy %q: want fail, skip or dead-letter", s)
}

// Config configures a Consumer.
type Config struct {
	Brokers []string
	Topics  []string
	// ClientID names this service to the brokers, for their logs and
	// quotas: its partition readers (their fetches, nearly all of its
	// traffic), its metadata and offset requests, and its dead-letter
	// writer.
	ClientID string

	// BatchSize bounds the messages of one store transaction; BatchWait bounds
	// how long a partial batch waits for more.
	BatchSize int
	BatchWait time.Duration
	// CatchUpBatchSize bounds the messages of one transaction while the
	// consumer is more than BatchSize messages behind the head (start-up
	// catch-up, a rebuild, after an outage): fewer, larger transactions
	// rewrite each B+tree page once for many events instead of once per few.
	// Such a batch is committed when it is full, when the consumer is no
	// longer behind, or CatchUpWait after it began. Zero: BatchSize.
	CatchUpBatchSize int
	CatchUpWait      time.Duration
	// CatchUpMaxWrites also ends a catch-up batch, at this many records to
	// write (one per distinct user, one per enrollment for a block of the
	// course's member index). Each dirties a page of the store, and a commit holds
	// every dirty page in memory at once (bbolt), so this bounds a commit's
	// memory whatever the size of the projection: ~15 KiB per record.
	CatchUpMaxWrites int

	// Fetch sizes of the partition readers: large fetches, and a MaxWait
	// well above a broker round trip.
	MinBytes int
	MaxBytes int
	MaxWait  time.Duration

	// PollInterval is how often partitions are discovered and end offsets
	// read (lag, connectivity).
	PollInterval time.Duration

	// ReadyMaxLag is how far behind the head (in messages, summed over
	// partitions) start-up catch-up may stop and still count as done.
	ReadyMaxLag int64

	// ReadyWithoutBrokersAfter lets a service whose store already holds a
	// projection turn ready without having reached a broker once this long
	// has passed since start: a replica restarted during a broker outage then
	// serves its (stale, and flagged so) answers instead of none. Zero:
	// never.
	ReadyWithoutBrokersAfter time.Duration

	Poison          PoisonPolicy
	DeadLetterTopic string

	// StartAt, when set, positions partitions that have no stored offset at
	// the first message at or after it (by broker timestamp) instead of the
	// earliest offset: a rebuild from a point in time.
	StartAt time.Time
}

// DefaultConfig returns a configuration with sane defaults and no brokers.
func DefaultConfig() Config {
	return Config{
		ClientID:  "enrollstatus",
		BatchSize: 5000,
		BatchWait: 100 * time.Millisecond,

		CatchUpBatchSize: 50000,
		CatchUpWait:      2 * time.Second,
		CatchUpMaxWrites: 16384,

		MinBytes:     1,
		MaxBytes:     16 << 20,
		MaxWait:      250 * time.Millisecond,
		PollInterval: 5 * time.Second,
		ReadyMaxLag:  0,

		ReadyWithoutBrokersAfter: 30 * time.Second,
	}
}

// EffectivePoison is the policy in force: the configured one, else
// dead-letter when a dead-letter topic is configured, else skip.
func (c Config) EffectivePoison() PoisonPolicy {
	switch {
	case c.Poison != "":
		return c.Poison
	case c.DeadLetterTopic != "":
		return PoisonDeadLetter
	}
	return PoisonSkip
}

// Validate says what to fix in c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers: set --brokers (ENROLLSTATUS_BROKERS), e.g. 127.0.0.1:9092"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("no topics: set --topics (ENROLLSTATUS_TOPICS)"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch size %d: must be at least 1", c.BatchSize))
	}
	if c.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("batch wait %v: must be positive", c.BatchWait))
	}
	if c.CatchUpBatchSize != 0 && c.CatchUpBatchSize < c.BatchSize {
		errs = append(errs, fmt.Errorf("catch-up batch size %d: must be 0 (off) or at least the batch size %d", c.CatchUpBatchSize, c.BatchSize))
	}
	if c.CatchUpBatchSize > c.BatchSize && c.CatchUpWait <= 0 {
		errs = append(errs, fmt.Errorf("catch-up wait %v: must be positive", c.CatchUpWait))
	}
	if c.CatchUpBatchSize > c.BatchSize && c.CatchUpMaxWrites < 1 {
		errs = append(errs, fmt.Errorf("catch-up max writes %d: must be at least 1", c.CatchUpMaxWrites))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("poll interval %v: must be positive", c.PollInterval))
	}
	if c.ReadyMaxLag < 0 {
		errs = append(errs, fmt.Errorf("ready max lag %d: must not be negative", c.ReadyMaxLag))
	}
	if _, err := ParsePoisonPolicy(string(c.Poison)); err != nil {
		errs = append(errs, err)
	}
	if c.EffectivePoison() == PoisonDeadLetter && c.DeadLetterTopic == "" {
		errs = append(errs, errors.New("poison policy dead-letter needs a dead-letter topic (--dead-letter-topic)"))
	}
	for _, t := range c.Topics {
		if t == c.DeadLetterTopic {
			errs = append(errs, fmt.Errorf("topic %q is both consumed and the dead-letter topic", t))
		}
	}
	return errors.Join(errs...)
}
