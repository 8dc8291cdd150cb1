package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/enrollstatus/enrollstatus/internal/synth"
)

// benchBroker is a kfake Kafka-protocol broker on a loopback port, in this
// driver's process: the measured consumer runs in a child process, so its
// memory holds none of the broker's log.
type benchBroker struct {
	cluster *kfake.Cluster
	Addr    string
	Topics  []string
}

const topicPrefix = "bench"

func startBroker(partitions int) (*benchBroker, error) {
	var topics []string
	for _, t := range synth.Topics {
		topics = append(topics, topicPrefix+"-"+t)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.SeedTopics(int32(partitions), topics...),
	)
	if err != nil {
		return nil, err
	}
	return &benchBroker{cluster: c, Addr: c.ListenAddrs()[0], Topics: topics}, nil
}

func (b *benchBroker) Close() { b.cluster.Close() }

// produceHistory produces the synthetic catalog and n events of history
// (internal/synth's realistic mix: mostly completions), keyed by course as
// the event bus keys them. It returns the number of messages produced.
func (b *benchBroker) produceHistory(ctx context.Context, seed uint64, users, courses, n int, log io.Writer) (int64, error) {
	gen := synth.New(seed, users, courses, time.Now().UTC())
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Balancer: &kafka.Hash{}, BatchSize: 2000,
		BatchTimeout: 20 * time.Millisecond, RequiredAcks: kafka.RequireOne}
	defer w.Close()
	send := func(msgs []synth.Message) error {
		out := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			out[i] = kafka.Message{Topic: topicPrefix + "-" + m.Topic, Key: m.Key, Value: m.Value}
			for k, v := range m.Headers {
				out[i].Headers = append(out[i].Headers, kafka.Header{Key: k, Value: []byte(v)})
			}
		}
		return w.WriteMessages(ctx, out...)
	}
	start := time.Now()
	if err := send(gen.Catalog()); err != nil {
		return 0, fmt.Errorf("produce catalog: %w", err)
	}
	total := int64(courses)
	var bytes int64
	last := time.Now()
	for total < int64(courses+n) {
		k := min(20000, courses+n-int(total))
		msgs := make([]synth.Message, 0, k)
		for range k {
			m := gen.Next(60)
			bytes += int64(len(m.Value))
			msgs = append(msgs, m)
		}
		if err := send(msgs); err != nil {
			msg := err.Error()
			return total, fmt.Errorf("produce history: %s", msg[:min(len(msg), 300)])
		}
		total += int64(k)
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			fmt.Fprintf(log, "  produced %d/%d\n", total, courses+n)
		}
	}
	fmt.Fprintf(log, "produced %d messages (%d MiB of values) in %v\n", total, bytes>>20, time.Since(start).Round(time.Millisecond))
	return total, nil
}

// endOffsets returns the sum of the end offsets of the topics' partitions.
func endOffsets(ctx context.Context, addr string, topics []string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return 0, p.Error
			}
			sum += p.LastOffset
		}
	}
	return sum, nil
}
