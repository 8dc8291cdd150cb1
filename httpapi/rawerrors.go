package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
)

// JSONErrorListener returns ln with connections on which the few answers
// net/http writes by itself are JSON 4xx like every other answer. Those
// are the requests it cannot parse, refused before any handler runs: a bad
// request line or URL escape, a malformed, missing or repeated Host,
// malformed or oversized headers (over twice Config.MaxHeaderBytes), an
// unknown transfer coding, an unknown HTTP version. net/http answers them
// in plain text, the last two with a 5xx; api.md wants "a 4xx with a JSON
// body" for any input a client can send. Server.Serve uses it; a server
// built with NewHTTPServer is served on it the same way.
func JSONErrorListener(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn rewrites net/http's own answers (see cannedAnswer) as they
// are written.
type jsonErrorConn struct{ net.Conn }

// cannedHeaders follow the status line of every answer net/http writes by
// itself (net/http's conn.serve), and of no other: every answer of this
// server's handlers is JSON, and net/http writes the headers of a handler's
// answer sorted, Connection before Content-Type.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	status, detail, ok := cannedAnswer(p)
	if !ok {
		return c.Conn.Write(p)
	}
	body := appendDetail(nil, detail)
	answer := http.Response{
		StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Close: true,
		Header:        http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)),
	}
	var out bytes.Buffer // one write, as net/http's own
	if err := answer.Write(&out); err != nil {
		return 0, err
	}
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close the connection after its 431, as it
// does on a bare TCP connection, so that the client reads the answer
// instead of a reset.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// cannedAnswer recognizes one of net/http's own answers in p, one write
// each ("HTTP/1.1 400 Bad Request", then cannedHeaders; a reason may follow
// the status text: "400 Bad Request: missing required Host header"), and
// returns the 4xx and the detail to answer instead.
func cannedAnswer(p []byte) (status int, detail string, ok bool) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto)) {
		return 0, "", false
	}
	end := bytes.IndexByte(p, '\r')
	if end < 0 || !bytes.HasPrefix(p[end:], []byte(cannedHeaders)) {
		return 0, "", false
	}
	line := p[len(proto):end] // "431 Request Header Fields Too Large", "400 Bad Request: invalid header name"
	code, err := strconv.Atoi(string(line[:min(3, len(line))]))
	if err != nil {
		return 0, "", false
	}
	_, reason, _ := bytes.Cut(line, []byte(": "))
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge:
		return code, errHeaderTooLarge.Detail, true
	case code == http.StatusNotImplemented: // an unknown transfer coding
		return http.StatusBadRequest, "Unsupported transfer encoding.", true
	case code == http.StatusHTTPVersionNotSupported:
		return http.StatusBadRequest, "Unsupported HTTP version.", true
	case len(reason) > 0:
		return http.StatusBadRequest, "Malformed request: " + string(reason) + ".", true
	}
	return http.StatusBadRequest, "Malformed request.", true
}
