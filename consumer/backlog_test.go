package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/synth"
)

// TestBacklog: the messages past the positions given, from the earliest
// where none is given, over every partition.
func TestBacklog(t *testing.T) {
	broker := MustBroker(t, 1, "events", "other")
	msgs := synth.New(1, 10, 3, time.Now().UTC()).History(40)
	produce(t, broker, "events", msgs)
	produce(t, broker, "other", msgs[:5])
	cfg := consumer.DefaultConfig()
	cfg.Brokers, cfg.Topics = []string{broker}, []string{"events", "other"}
	n := int64(len(msgs))
	for _, tc := range []struct {
		positions map[consumer.Position]int64
		want      int64
	}{
		{nil, n + 5},
		{map[consumer.Position]int64{{Topic: "events", Partition: 0}: 7}, n - 7 + 5},
		{map[consumer.Position]int64{{Topic: "events", Partition: 0}: n, {Topic: "other", Partition: 0}: 5}, 0},
		{map[consumer.Position]int64{{Topic: "events", Partition: 0}: n + 10}, 5}, // past the end: nothing
	} {
		got, err := consumer.Backlog(context.Background(), cfg, tc.positions)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Backlog(%v) = %d, want %d", tc.positions, got, tc.want)
		}
	}
	cfg.Brokers = []string{"127.0.0.1:1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := consumer.Backlog(ctx, cfg, nil); err == nil {
		t.Fatal("Backlog with no broker listening: no error")
	}
}
