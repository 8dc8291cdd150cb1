package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ErrorCode classifies a client fault. The codes are Django REST framework's
// where it has one. statusOf maps each to its HTTP status, in one place.
type ErrorCode string

const (
	EINVALID          ErrorCode = "invalid"               // 400
	ENOTAUTHENTICATED ErrorCode = "not_authenticated"     // 401, no credentials
	EAUTHFAILED       ErrorCode = "authentication_failed" // 401, bad credentials
	EFORBIDDEN        ErrorCode = "permission_denied"     // 403
	ENOTFOUND         ErrorCode = "not_found"             // 404
	EMETHOD           ErrorCode = "method_not_allowed"    // 405
	ENOTACCEPTABLE    ErrorCode = "not_acceptable"        // 406
	EURITOOLONG       ErrorCode = "uri_too_long"          // 414
	EHEADERTOOLARGE   ErrorCode = "header_too_large"      // 431
	EUNAVAILABLE      ErrorCode = "unavailable"           // 503
)

var statusOf = map[ErrorCode]int{
	EINVALID:          http.StatusBadRequest,
	ENOTAUTHENTICATED: http.StatusUnauthorized,
	EAUTHFAILED:       http.StatusUnauthorized,
	EFORBIDDEN:        http.StatusForbidden,
	ENOTFOUND:         http.StatusNotFound,
	EMETHOD:           http.StatusMethodNotAllowed,
	ENOTACCEPTABLE:    http.StatusNotAcceptable,
	EURITOOLONG:       http.StatusRequestURITooLong,
	EHEADERTOOLARGE:   http.StatusRequestHeaderFieldsTooLarge,
	EUNAVAILABLE:      http.StatusServiceUnavailable,
}

// Error is a fault of the request, not of the server: the client sees its
// Detail in a JSON body {"detail": ...} with the status of its Code. Any
// other error a handler returns is a server fault: it is logged and the
// client gets a 500 without details. Handlers mounted on Admin may return
// Errors too.
type Error struct {
	Code   ErrorCode
	Detail string
}

// Errorf returns an *Error with a formatted detail.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Detail }

// Details the LMS (Django REST framework) answers with.
const (
	detailNotFound         = "Not found."
	detailNotAuthenticated = "Authentication credentials were not provided."
	detailNotAcceptable    = "Could not satisfy the request Accept header."
	detailForbidden        = "You do not have permission to perform this action."
	detailServerError      = "A server error occurred."
)

var errNotFound = &Error{Code: ENOTFOUND, Detail: detailNotFound}

func methodNotAllowed(method string) *Error {
	return &Error{Code: EMETHOD, Detail: `Method "` + method + `" not allowed.`}
}

// statusClientClosed is what a request whose client went away is counted
// as (nginx's convention); nobody reads its answer.
const statusClientClosed = 499

// handleError is echo's HTTPErrorHandler: the one place errors become
// statuses. It writes {"detail": ...} and logs server faults.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		// Nearly always the client going away mid-answer.
		s.log.Debug("http: error after the response was sent", "route", routeOf(c), "err", err)
		return
	}
	status, detail := http.StatusInternalServerError, detailServerError
	var e *Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &e):
		status, detail = statusOf[e.Code], e.Detail
		if status == 0 {
			status = http.StatusBadRequest
		}
	case errors.As(err, &he):
		// echo's own answers: an unknown route, a method a route lacks.
		status = he.Code
		switch status {
		case http.StatusNotFound:
			detail = detailNotFound
		case http.StatusMethodNotAllowed:
			detail = methodNotAllowed(c.Request().Method).Detail
		default:
			detail = http.StatusText(status)
			if status >= 500 {
				s.log.Error("http: server fault", "route", routeOf(c), "method", c.Request().Method, "err", err)
			}
		}
	case errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		status, detail = statusClientClosed, "Client closed request."
	default:
		s.log.Error("http: server fault", "route", routeOf(c), "method", c.Request().Method, "err", err)
	}
	if err := writeDetail(c, status, detail); err != nil {
		s.log.Debug("http: writing an error response", "err", err)
	}
}

// writeDetail answers {"detail": detail} with status.
func writeDetail(c echo.Context, status int, detail string) error {
	b := getBody()
	defer putBody(b)
	*b = appendDetail(*b, detail)
	return writeJSON(c, status, *b)
}
