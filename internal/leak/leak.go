// Package leak counts goroutines that should be gone, for tests that check
// that what a component started was waited for.
package leak

import (
	"bytes"
	"runtime"
)

// KafkaReaders counts the goroutines running or closing a kafka-go Reader.
func KafkaReaders() int {
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
