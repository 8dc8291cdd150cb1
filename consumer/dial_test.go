package consumer

import (
	"bytes"
	"context"
	"encoding/binary"
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

// firstClientID accepts one connection on ln and returns the client id of
// the first Kafka request on it (size, api key, version, correlation id,
// then the client id as a 16-bit length and its bytes), then closes it.
func firstClientID(t *testing.T, ln net.Listener) <-chan string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		defer close(got)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var head [4 + 2 + 2 + 4 + 2]byte
		if _, err := io.ReadFull(conn, head[:]); err != nil {
			return
		}
		id := make([]byte, binary.BigEndian.Uint16(head[12:]))
		if _, err := io.ReadFull(conn, id); err != nil {
			return
		}
		got <- string(id)
	}()
	return got
}

// TestClientsSendTheClientID: the metadata and offsets client (here through
// Backlog) sends the configured client id, and the dead-letter writer shares
// its transport.
func TestClientsSendTheClientID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := firstClientID(t, ln)
	cfg := DefaultConfig()
	cfg.Brokers = []string{ln.Addr().String()}
	cfg.Topics = []string{"openedx-completion"}
	cfg.ClientID = "replica-seven"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Backlog(ctx, cfg, nil); err == nil {
		t.Fatal("Backlog against a listener that hangs up: no error")
	}
	if id := <-got; id != "replica-seven" {
		t.Fatalf("the first request's client id is %q, want %q", id, "replica-seven")
	}

	cfg.Poison, cfg.DeadLetterTopic = PoisonDeadLetter, "enrollstatus-dead-letter"
	c, err := New(cfg, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeClient()
	if c.dlq == nil || c.dlq.Transport != c.client.Transport {
		t.Fatal("the dead-letter writer does not share the client's transport (and its client id)")
	}
}
