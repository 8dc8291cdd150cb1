package httpapi

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/labstack/echo/v4"
)

// decodedPath makes echo route on the percent-decoded path, as Django does:
// the view sees "/users/a b/" for "/users/a%20b/", and "%2F" becomes a "/"
// that no username can hold. The path is decoded once, by net/http; nothing
// decodes it again.
func decodedPath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Request().URL.RawPath = ""
		return next(c)
	}
}

// recoverPanic turns a panic in a handler into a server fault, answered 500
// and logged with its stack by the error handler.
func recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		return next(c)
	}
}

// limits answers 414 and 431 with a JSON body for request targets and
// headers over the configured sizes. net/http itself refuses headers over
// twice Config.MaxHeaderBytes, before any handler runs, with a plain-text
// 431 (see NewHTTPServer).
func (s *Server) limits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if len(r.RequestURI) > s.cfg.MaxURLBytes {
			return errURITooLong
		}
		if headerSize(r) > s.cfg.MaxHeaderBytes {
			return errHeaderTooLarge
		}
		return next(c)
	}
}

var (
	errURITooLong     = &Error{Code: EURITOOLONG, Detail: "Request-URI too long."}
	errHeaderTooLarge = &Error{Code: EHEADERTOOLARGE, Detail: "Request header fields too large."}
)

// headerSize approximates the bytes of the request line and headers as sent.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host) + len("Host: \r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
