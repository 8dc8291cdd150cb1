// Package leak counts goroutines that should be gone, for tests that check
// that what a component started was waited for.
package leak

import (
	"bytes"
	"runtime"
	"time"
)

// KafkaReaders counts the goroutines running or closing a kafka-go Reader,
// giving them up to grace to end: a goroutine whose end was waited for may
// still be returning from its last frames (as goleak, it retries).
func KafkaReaders(grace time.Duration) int {
	deadline := time.Now().Add(grace)
	for {
		n := kafkaReaders()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kafkaReaders() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("segmentio/kafka-go.(*Reader)")) || bytes.Contains(g, []byte("segmentio/kafka-go.(*reader)")) {
			count++
		}
	}
	return count
}
