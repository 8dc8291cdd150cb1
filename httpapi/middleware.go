package httpapi

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
)

// serveHTTP is the server's http.Handler: echo, after making it route on
// the percent-decoded path, as Django does: the view sees "/users/a b/" for
// "/users/a%20b/", and "%2F" becomes a "/" that no username can hold. The
// path is decoded once, by net/http; nothing decodes it again. (Done here
// rather than in an echo Pre middleware, which costs a closure per request.)
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	r.URL.RawPath = ""
	s.echo.ServeHTTP(w, r)
}

// middleware is every route's middleware, in one function (one closure per
// request rather than one per middleware), outermost first: it counts and
// times the request, answering errors itself through the error handler so
// that the status recorded is the one sent; it turns a panic into a server
// fault; and it answers over-long request targets and headers.
func (s *Server) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := s.recoverLimits(c, next); err != nil {
			c.Error(err)
		}
		s.metrics.observe(c, start)
		return nil
	}
}

// recoverLimits runs next after checkLimits, turning a panic in either into
// a server fault, answered 500 and logged with its stack by the error
// handler.
func (s *Server) recoverLimits(c echo.Context, next echo.HandlerFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	if err := s.checkLimits(c.Request()); err != nil {
		return err
	}
	return next(c)
}

// checkLimits answers 414 and 431 with a JSON body for request targets and
// headers over the configured sizes. net/http itself refuses headers over
// twice Config.MaxHeaderBytes, before any handler runs (see NewHTTPServer
// and JSONErrorListener).
func (s *Server) checkLimits(r *http.Request) error {
	if len(r.RequestURI) > s.cfg.MaxURLBytes {
		return errURITooLong
	}
	if headerSize(r) > s.cfg.MaxHeaderBytes {
		return errHeaderTooLarge
	}
	return nil
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
