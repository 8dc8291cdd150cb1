package pipeline

import (
	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/store"
)

// StoreSink stores the consumer's batches in a store.
type StoreSink struct{ Store *store.Store }

// Apply writes the batch and its offsets in one transaction.
func (s StoreSink) Apply(b consumer.Batch) (int, error) {
	res, err := s.Store.Apply(store.Batch{Events: b.Events, Offsets: storeOffsets(b.Offsets), Messages: b.Messages})
	return res.DroppedRetired, err
}

func storeOffsets(offs map[consumer.Position]int64) map[store.Partition]int64 {
	out := make(map[store.Partition]int64, len(offs))
	for p, next := range offs {
		out[store.Partition{Topic: p.Topic, Partition: p.Partition}] = next
	}
	return out
}

// Positions returns the stored next offsets.
func (s StoreSink) Positions() (map[consumer.Position]int64, error) {
	offs, err := s.Store.Offsets()
	return positions(offs), err
}

// positions is storeOffsets the other way.
func positions(offs map[store.Partition]int64) map[consumer.Position]int64 {
	out := make(map[consumer.Position]int64, len(offs))
	for p, next := range offs {
		out[consumer.Position{Topic: p.Topic, Partition: p.Partition}] = next
	}
	return out
}
