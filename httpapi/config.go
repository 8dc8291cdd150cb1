package httpapi

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
)

// Config is the HTTP side of the service. DefaultConfig fills every field
// but the JWT keys, which a deployment must give.
type Config struct {
	// Addr is the listen address, host:port. Default ":8080".
	Addr string

	// ReadHeaderTimeout bounds reading a request's headers: a client
	// trickling them (slowloris) is cut off. Default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the answer. Default 15s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus headers. Larger requests
	// are answered 431 with a JSON body (by net/http itself, before any
	// handler, those over twice this). Default 32 KiB.
	MaxHeaderBytes int
	// MaxURLBytes bounds the request target (path and query). Longer ones
	// are answered 414. Default 8 KiB.
	MaxURLBytes int

	// StaleLag is the consumer lag, in messages, above which answers are
	// flagged X-Enrollstatus-Stale: true. Default 1000.
	StaleLag int64

	// JWT says which user tokens are accepted; see jwtauth.Config. Default:
	// jwtauth.DefaultConfig(), which has no key yet.
	JWT jwtauth.Config

	// AdminToken is the bearer token of the admin endpoints (Server.Admin),
	// separate from user JWTs. Empty, the default, turns them off. At least
	// 32 characters; make it random.
	AdminToken string
}

// DefaultConfig returns the defaults. A deployment must still add a JWT key
// (JWT.Secrets or a JWK set).
func DefaultConfig() Config {
	return Config{
		Addr:              ":8080",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		MaxURLBytes:       8 << 10,
		StaleLag:          1000,
		JWT:               jwtauth.DefaultConfig(),
	}
}

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 32

// Validate reports every setting that cannot work, saying what to fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("Addr %q is not host:port: give e.g. :8080 or 127.0.0.1:8080", c.Addr)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout},
		{"ReadTimeout", c.ReadTimeout},
		{"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout},
	} {
		if d.v <= 0 {
			bad("%s is %v: give a positive duration (zero would let slow clients hold connections forever)", d.name, d.v)
		}
	}
	if c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 1<<20 {
		bad("MaxHeaderBytes is %d: give between 4096 and 1048576 (default 32768)", c.MaxHeaderBytes)
	}
	if c.MaxURLBytes < 1<<10 || c.MaxURLBytes > c.MaxHeaderBytes {
		bad("MaxURLBytes is %d: give between 1024 and MaxHeaderBytes (default 8192)", c.MaxURLBytes)
	}
	if c.StaleLag < 0 {
		bad("StaleLag is %d: give a number of messages, 0 or more", c.StaleLag)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		bad("AdminToken has %d characters: give at least %d random ones, or none to turn the admin endpoints off",
			len(c.AdminToken), minAdminToken)
	}
	if err := c.JWT.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("http config: %w", err)
	}
	return nil
}
