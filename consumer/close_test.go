package consumer_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/consumer"
	"github.com/enrollstatus/enrollstatus/internal/leak"
	"github.com/enrollstatus/enrollstatus/internal/synth"
	"github.com/enrollstatus/enrollstatus/store"
)

// TestReadersClosedByWaitClosed: a stopping consumer does not wait for its
// readers' long polls (Run returns at once), and WaitClosed does: after it,
// no kafka-go reader goroutine is left.
func TestReadersClosedByWaitClosed(t *testing.T) {
	broker := MustBroker(t, 3, "events")
	gen := synth.New(3, 50, 5, time.Now().UTC())
	produce(t, broker, "events", append(gen.Catalog(), gen.History(300)...))

	const maxWait = 2 * time.Second // each reader's long poll at the head
	r := startPipeline(t, broker, filepath.Join(t.TempDir(), store.FileName), func(c *consumer.Config) {
		c.MaxWait = maxWait
	})
	waitFor(t, "ready", time.Minute, func() bool { return r.consumer.Ready() == nil })
	time.Sleep(100 * time.Millisecond) // the readers are in long polls at the head

	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > maxWait/2 {
		t.Fatalf("Run took %v to return: it waited for its readers' long polls (MaxWait %v)", took, maxWait)
	}
	r.consumer.WaitClosed()
	if n := leak.KafkaReaders(50 * time.Millisecond); n > 0 {
		t.Fatalf("%d kafka-go reader goroutines left after WaitClosed", n)
	}
}
