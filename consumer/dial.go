package consumer

import (
	"bufio"
	"context"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// dialer is kafka-go's default dialer (a 10 s connect timeout, dual stack)
// with the configured client id and connections that read ahead.
func (c Config) dialer() *kafka.Dialer {
	var d net.Dialer
	return &kafka.Dialer{
		ClientID: c.ClientID,
		Timeout:  10 * time.Second,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return newReadAheadConn(conn), nil
		},
	}
}

// readAheadSize is how much a connection reads from its socket at once.
const readAheadSize = 128 << 10

// readAheadConn is a connection whose reads take from the socket whatever
// has arrived, up to readAheadSize, in one system call. kafka-go reads a
// fetch response through a 4 KiB bufio.Reader of its own, which costs a
// read(2) per 4 KiB: about one per six messages of a replay, a tenth of a
// rebuild's CPU. It waits for no more than what is there, so it adds no
// latency; deadlines and the rest are the socket's own.
type readAheadConn struct {
	net.Conn
	r *bufio.Reader
}

func newReadAheadConn(conn net.Conn) *readAheadConn {
	return &readAheadConn{Conn: conn, r: bufio.NewReaderSize(conn, readAheadSize)}
}

func (c *readAheadConn) Read(p []byte) (int, error) { return c.r.Read(p) }
