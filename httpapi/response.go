package httpapi

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// Header values shared by every response; the slices are never appended to.
var (
	jsonContentType = []string{"application/json"}
	allowView       = []string{"GET, HEAD, OPTIONS"}
	varyAccept      = []string{"Accept"}
	nosniff         = []string{"nosniff"}
	wwwAuthJWT      = []string{`JWT realm="api"`}
)

// writeJSON answers status with a JSON body, always with its length, so
// that HEAD answers carry the length of the GET body they stand for.
//
// net/http sets Content-Length by itself on an answer whose handler returned
// having written a body that fit its buffer (bufferBeforeChunkingSize, 2048
// bytes): the length is only put in the header map when net/http would not,
// for a larger body (which it would otherwise send chunked) and for HEAD. A
// status answer has eight other headers; a ninth would grow the header map
// past Go's small-map size, and net/http clones that map for every answer.
// The headers sent are the same; net/http writes its own Content-Length
// after the sorted map's fields, next to Date.
func writeJSON(c echo.Context, status int, body []byte) error {
	h := c.Response().Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	if len(body) > autoLengthMax || c.Request().Method == http.MethodHead {
		h["Content-Length"] = contentLength(len(body))
	}
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(body)
	return err
}

// autoLengthMax is the largest body net/http buffers whole before writing
// the header, and so gives a Content-Length of its own (its
// bufferBeforeChunkingSize; TestContentLength holds it to that).
const autoLengthMax = 2048

// contentLengths are the Content-Length values of the sizes answered so
// far, below maxCachedLength: shared, never modified.
var contentLengths [maxCachedLength]atomic.Pointer[[]string]

const maxCachedLength = 8 << 10

func contentLength(n int) []string {
	if n >= maxCachedLength {
		return []string{strconv.Itoa(n)}
	}
	if v := contentLengths[n].Load(); v != nil {
		return *v
	}
	v := []string{strconv.Itoa(n)}
	contentLengths[n].Store(&v)
	return v
}
