package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
)

// authenticate returns whom the request's JWT was issued for, or a 401 *Error
// whose answer carries WWW-Authenticate like the LMS's JwtAuthentication.
// Only the Authorization header is read: a token in the query string or a
// cookie is never looked at.
func (s *Server) authenticate(c echo.Context) (jwtauth.Identity, error) {
	r := c.Request()
	token, ok := credentials(r.Header["Authorization"])
	if !ok {
		c.Response().Header()["Www-Authenticate"] = wwwAuthJWT
		return jwtauth.Identity{}, &Error{Code: ENOTAUTHENTICATED, Detail: detailNotAuthenticated}
	}
	user, err := s.verifier.Verify(r.Context(), token)
	if err != nil {
		c.Response().Header()["Www-Authenticate"] = wwwAuthJWT
		var jerr *jwtauth.Error
		if !errors.As(err, &jerr) {
			return jwtauth.Identity{}, err
		}
		// The detail and cause name the failed check, never the token; the
		// client is told what the LMS tells it.
		s.log.Debug("http: token refused", "detail", jerr.Detail, "cause", errors.Unwrap(jerr))
		return jwtauth.Identity{}, &Error{Code: EAUTHFAILED, Detail: jerr.ClientDetail()}
	}
	return user, nil
}

// credentials finds the token in the Authorization header values. Like
// drf-jwt, the header must be exactly a scheme, one space and the token;
// the scheme is JWT or Bearer, in any case. Anything else counts as no
// credentials at all (the LMS then tries its other authentication classes,
// which do not apply here), as do several Authorization headers.
func credentials(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || token == "" || strings.IndexByte(token, ' ') >= 0 {
		return "", false
	}
	if !strings.EqualFold(scheme, "JWT") && !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}

// RequireAdmin guards admin endpoints with a shared token, separate from user
// JWTs: requests must carry "Authorization: Bearer <token>". The comparison
// takes the same time whatever the token sent. An empty token turns the
// admin endpoints off: they answer 404 as if they did not exist.
func RequireAdmin(token string) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token == "" {
				return errNotFound
			}
			values := c.Request().Header["Authorization"]
			if len(values) == 0 {
				c.Response().Header()["Www-Authenticate"] = wwwAuthAdmin
				return &Error{Code: ENOTAUTHENTICATED, Detail: "Admin credentials were not provided."}
			}
			scheme, got, _ := strings.Cut(values[0], " ")
			sum := sha256.Sum256([]byte(got))
			if len(values) != 1 || !strings.EqualFold(scheme, "Bearer") ||
				subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				c.Response().Header()["Www-Authenticate"] = wwwAuthAdmin
				return &Error{Code: EAUTHFAILED, Detail: "Invalid admin credentials."}
			}
			return next(c)
		}
	}
}

var wwwAuthAdmin = []string{`Bearer realm="admin"`}
