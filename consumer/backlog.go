package consumer

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Backlog asks the brokers how many messages of cfg's topics lie past
// positions: per partition, from its position (from the earliest offset
// kept, where it has none) to its end. A catch-up uses it to choose how to
// catch up before it starts.
func Backlog(ctx context.Context, cfg Config, positions map[Position]int64) (int64, error) {
	client, closeClient := newClient(cfg)
	defer closeClient()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: cfg.Topics})
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	var backlog int64
	for topic, offs := range resp.Topics {
		for _, po := range offs {
			if po.Error != nil {
				return 0, fmt.Errorf("%s/%d: list offsets: %w", topic, po.Partition, po.Error)
			}
			from := po.FirstOffset
			if next, ok := positions[Position{topic, po.Partition}]; ok {
				from = max(from, next)
			}
			backlog += max(po.LastOffset-from, 0)
		}
	}
	return backlog, nil
}
