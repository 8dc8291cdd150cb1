package store_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/enrollstatus/enrollstatus/internal/reference"
	"github.com/enrollstatus/enrollstatus/projection"
	"github.com/enrollstatus/enrollstatus/store"
)

// The crash test's log: a fixed history spread over partitions, as a topic
// would hold it. Offset i of partition p is crashLog()[p][i].
const crashPartitions = 3

func crashLog() [][]projection.Event {
	rng := rand.New(rand.NewPCG(2026, 11))
	history := reference.RandomHistory(rng, 300, 20, 30000, now)
	parts := make([][]projection.Event, crashPartitions)
	for i, e := range history {
		parts[i%crashPartitions] = append(parts[i%crashPartitions], e)
	}
	return parts
}

// consumeAll is what a consumer does: resume every partition from the stored
// offset and apply small batches until the log is consumed.
func consumeAll(path string, rng *rand.Rand, maxBatch int) error {
	s, err := store.Open(path, store.DefaultOptions())
	if err != nil {
		return err
	}
	defer s.Close()
	log := crashLog()
	for {
		offs, err := s.Offsets()
		if err != nil {
			return err
		}
		b := store.Batch{Offsets: map[store.Partition]int64{}}
		for p := range log {
			next := offs[store.Partition{Topic: "log", Partition: p}]
			end := min(int64(len(log[p])), next+int64(rng.IntN(maxBatch)))
			b.Events = append(b.Events, log[p][next:end]...)
			b.Messages += int(end - next)
			b.Offsets[store.Partition{Topic: "log", Partition: p}] = end
		}
		if b.Messages == 0 {
			done := true
			for p := range log {
				done = done && offs[store.Partition{Topic: "log", Partition: p}] == int64(len(log[p]))
			}
			if done {
				return nil
			}
			continue
		}
		if _, err := s.Apply(b); err != nil {
			return err
		}
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv("STORE_CRASH_CHILD"); path != "" {
		maxBatch := 5 // small batches: many commits for the kills to land between
		if os.Getenv("STORE_CRASH_FINISH") != "" {
			maxBatch = 500
		}
		if err := consumeAll(path, rand.New(rand.NewPCG(uint64(os.Getpid()), 1)), maxBatch); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrashSafety kills a consuming process with SIGKILL at random instants,
// restarts it from the stored offsets each time, and checks the final file:
// same content as an uninterrupted run, and every message applied exactly
// once (the applied counter equals the log's length).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), store.FileName)
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 200 {
			t.Fatal("the consumer never finished")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STORE_CRASH_CHILD="+path)
		if kills >= 25 {
			cmd.Env = append(cmd.Env, "STORE_CRASH_FINISH=1")
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		wait := time.Duration(20+rng.IntN(60)) * time.Millisecond
		if kills >= 25 {
			wait = time.Minute // enough crashes: let it finish
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("consumer failed: %v", err)
			}
		case <-time.After(wait):
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			continue
		}
		break
	}
	if kills < 20 {
		t.Fatalf("only %d kills happened before the consumer finished; the test proves little", kills)
	}

	crashed, err := store.Open(path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	clean := MustOpen(t)
	total := 0
	for p, events := range crashLog() {
		total += len(events)
		if _, err := clean.Apply(store.Batch{Events: events, Messages: len(events),
			Offsets: map[store.Partition]int64{{Topic: "log", Partition: p}: int64(len(events))}}); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := store.Diff(crashed, clean, 5); err != nil || len(d) > 0 {
		t.Fatalf("after %d kills the projection differs from a clean run: %v %v", kills, d, err)
	}
	f, err := crashed.Freshness()
	if err != nil {
		t.Fatal(err)
	}
	if f.Applied != uint64(total) {
		t.Fatalf("applied %d messages for a log of %d: lost or applied twice", f.Applied, total)
	}
	t.Logf("%d kills survived; %d messages applied exactly once", kills, total)
}
