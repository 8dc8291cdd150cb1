package httpapi

import (
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

// writeJSON answers status with a JSON body. The length is always set, so
// that HEAD answers carry the length of the GET body they stand for.
func writeJSON(c echo.Context, status int, body []byte) error {
	h := c.Response().Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	h["Content-Length"] = contentLength(len(body))
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(body)
	return err
}

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
