package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// A sink that holds no transaction's pages in memory while it takes a batch
// (a bulk load's sort) has an UnboundedWrites method: the consumer then
// neither counts a batch's writes nor ends a catch-up batch at
// CatchUpMaxWrites.
type unboundedWrites interface{ UnboundedWrites() }

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
	// closeClient closes the connections of client and of dlq, which
	// share a transport.
	closeClient func()
	dlq         *kafka.Writer

	items chan []item // decoded messages, a partition's slice at a time
	spare chan []item // slices the applier is done with
	// closing counts the readers Run's partition readers left closing in
	// the background (see readPartition); WaitClosed waits for them.
	closing sync.WaitGroup

	mu     sync.Mutex
	parts  map[Position]*partition
	stored map[Position]bool  // partitions with an offset in the store at start
	target map[Position]int64 // end offsets at start-up: the catch-up goal

	caughtUp  atomic.Bool
	connected atomic.Bool
	// lag is the partitions' lag summed, stored by sumLag whenever a
	// position changes: Lag, asked by every query, reads it without mu.
	lag       atomic.Int64
	lastEvent atomic.Int64 // Unix microseconds of the newest event applied
	started   time.Time    // when Run began
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
		cfg:   cfg,
		sink:  sink,
		dec:   dec,
		log:   log,
		m:     m,
		items: make(chan []item, max(4*cfg.BatchSize/handOverItems, 16)),
		spare: make(chan []item, max(4*cfg.BatchSize/handOverItems, 16)),
		parts: make(map[Position]*partition),
	}
	c.client, c.closeClient = newClient(cfg)
	if cfg.EffectivePoison() == PoisonDeadLetter {
		c.dlq = &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Transport:    c.client.Transport, // the client id, and one pool of connections to close
			Topic:        cfg.DeadLetterTopic,
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			Balancer:     &kafka.Hash{},
		}
	}
	return c, nil
}

// newClient is a client of cfg's brokers for metadata and offsets, on a
// transport of its own that sends cfg's client id (kafka-go's shared
// default transport sends none). close releases its connections.
func newClient(cfg Config) (client *kafka.Client, close func()) {
	tr := &kafka.Transport{ClientID: cfg.ClientID}
	return &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}, tr.CloseIdleConnections
}

// Run consumes until ctx is done or the sink fails. A batch in progress when
// ctx ends is committed whole or not at all.
func (c *Consumer) Run(ctx context.Context) error {
	positions, err := c.sink.Positions()
	if err != nil {
		return fmt.Errorf("read stored offsets: %w", err)
	}
	c.mu.Lock()
	c.started = time.Now()
	c.stored = map[Position]bool{}
	for p, next := range positions {
		if contains(c.cfg.Topics, p.Topic) {
			c.parts[p] = &partition{next: next, end: next}
			c.stored[p] = true
		}
	}
	c.sumLag()
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
	c.closeClient()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// WaitClosed waits for the kafka-go readers Run left closing in the
// background: a reader's Close waits for its fetch in flight, at the head a
// long poll of up to MaxWait, and Run does not wait for that (see
// readPartition). Nothing those readers fetch is applied. Run must have
// returned; whoever runs a consumer calls WaitClosed before it is done with
// it, at a moment when the wait costs nothing, or from a goroutine it owns.
func (c *Consumer) WaitClosed() { c.closing.Wait() }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
