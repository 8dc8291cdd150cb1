package consumer

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// countingConn counts the reads that reach the connection under it.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

// TestReadAheadConnReadsWhatArrivedAtOnce: kafka-go's 4 KiB reads of a
// large response are served from one read of the socket, the bytes come
// out whole and in order, and a read waits for no more than what arrived.
func TestReadAheadConnReadsWhatArrivedAtOnce(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close() // ends the writer below, should the test fail before reading all
	under := &countingConn{Conn: client}
	conn := newReadAheadConn(under)

	want := make([]byte, 100_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		server.Write(want) // a fetch response, written at once
		server.Write([]byte("tail"))
	}()
	got := make([]byte, 0, len(want))
	p := make([]byte, 4096) // kafka-go's buffer
	for len(got) < len(want) {
		n, err := conn.Read(p[:min(len(p), len(want)-len(got))])
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from those written")
	}
	// net.Pipe hands a write over whole, so one read takes all of it where
	// a 4 KiB buffer would take 25.
	if under.reads > 2 {
		t.Errorf("%d reads of the connection for 100,000 bytes; want them read ahead in one or two", under.reads)
	}

	// The next write is read as soon as it is there, not held back to fill
	// the buffer.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	tail, err := io.ReadAll(io.LimitReader(conn, 4))
	if err != nil || string(tail) != "tail" {
		t.Fatalf("tail: %q, %v", tail, err)
	}
}

func TestReaderConfigNamesTheClient(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.ClientID = "enrollstatus-test"
	rc := cfg.ReaderConfig("openedx-completion", 2)
	if rc.Dialer == nil || rc.Dialer.ClientID != "enrollstatus-test" {
		t.Fatalf("dialer %+v: want the configured client id", rc.Dialer)
	}
	if rc.Topic != "openedx-completion" || rc.Partition != 2 || rc.MaxBytes != cfg.MaxBytes ||
		rc.MinBytes != cfg.MinBytes || rc.MaxWait != cfg.MaxWait {
		t.Fatalf("reader config %+v does not carry the consumer's", rc)
	}
}
