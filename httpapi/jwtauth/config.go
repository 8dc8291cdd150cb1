package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config says which JWTs a Verifier accepts. Its fields follow the LMS's
// JWT_AUTH settings (edx-drf-extensions), named in brackets.
type Config struct {
	// Secrets are the HS256 shared secrets [JWT_SECRET_KEY, JWT_ISSUERS[].SECRET_KEY].
	// A token verified by any of them is accepted, so a secret is rotated by
	// adding the new one, waiting for old tokens to expire, then removing
	// the old one. Empty: HS256 tokens are refused.
	Secrets []string
	// Issuers are the accepted "iss" values [JWT_ISSUERS[].ISSUER]. Empty: the
	// issuer is not checked.
	Issuers []string
	// Audiences are the accepted "aud" values [JWT_AUDIENCE]; a token's aud,
	// a string or a list, must contain one of them. Empty: not checked.
	Audiences []string
	// JWKS is an inline JWK set, JSON [JWT_PUBLIC_SIGNING_JWK_SET].
	JWKS string
	// JWKSFile is the path of a file holding a JWK set. It is read once, by New.
	JWKSFile string
	// JWKSURL is where to fetch a JWK set from (http or https). It is fetched
	// by New (a failure there is logged, not fatal), every JWKSRefresh, and
	// when a token names a kid that no known key has, at most once per
	// JWKSUnknownKIDInterval.
	JWKSURL string
	// JWKSRefresh is the period of the background refresh of JWKSURL.
	// Default 1h.
	JWKSRefresh time.Duration
	// JWKSUnknownKIDInterval is the least time between two refreshes of
	// JWKSURL triggered by unknown kids, so that tokens with made-up kids
	// cannot make the service hammer the key server. A token with an unknown
	// kid that arrives inside the interval is refused at once. Default 1m.
	JWKSUnknownKIDInterval time.Duration
	// JWKSTimeout bounds one fetch of JWKSURL. Default 5s.
	JWKSTimeout time.Duration
	// JWKSMaxBytes bounds the size of a fetched JWK set. Default 1 MiB.
	JWKSMaxBytes int64
	// Leeway is the clock skew allowed on exp, nbf and iat [JWT_LEEWAY, 1 in
	// Open edX's settings]. Default 1s.
	Leeway time.Duration
	// CacheSize bounds the cache of recently verified tokens (see
	// CacheTTL); 0 turns it off. Default 16384 (about 1.5 MiB).
	CacheSize int
	// CacheTTL is how long a verified token is trusted without being
	// verified again (never past its exp): how long a secret or key removed
	// from the configuration may still be honoured. Default 1m.
	CacheTTL time.Duration
}

// DefaultConfig returns a Config with every default filled in and no key:
// a caller must add Secrets or a JWK set.
func DefaultConfig() Config {
	return Config{
		JWKSRefresh:            time.Hour,
		JWKSUnknownKIDInterval: time.Minute,
		JWKSTimeout:            5 * time.Second,
		JWKSMaxBytes:           1 << 20,
		Leeway:                 time.Second,
		CacheSize:              16384,
		CacheTTL:               time.Minute,
	}
}

// Validate reports every setting that cannot work, saying what to fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Secrets) == 0 && c.JWKS == "" && c.JWKSFile == "" && c.JWKSURL == "" {
		bad("no key to verify tokens with: set at least one of Secrets (HS256), JWKS, JWKSFile or JWKSURL (RS256/ES256)")
	}
	for i, s := range c.Secrets {
		if s == "" {
			bad("Secrets[%d] is empty: remove it or give the LMS's JWT secret", i)
		}
	}
	for i, s := range c.Issuers {
		if strings.TrimSpace(s) == "" {
			bad("Issuers[%d] is blank: remove it or give the LMS's JWT issuer, e.g. https://lms.example.com/oauth2", i)
		}
	}
	for i, s := range c.Audiences {
		if strings.TrimSpace(s) == "" {
			bad("Audiences[%d] is blank: remove it or give the LMS's JWT audience", i)
		}
	}
	if c.JWKS != "" && !json.Valid([]byte(c.JWKS)) {
		bad(`JWKS is not valid JSON: give a JWK set, {"keys":[...]}`)
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("JWKSURL %q is not an http(s) URL: give e.g. https://lms.example.com/api/jwks/", c.JWKSURL)
		}
		if c.JWKSRefresh <= 0 {
			bad("JWKSRefresh is %v: give a positive period, e.g. 1h", c.JWKSRefresh)
		}
		if c.JWKSUnknownKIDInterval <= c.JWKSTimeout {
			bad("JWKSUnknownKIDInterval is %v: give more than JWKSTimeout (%v), e.g. 1m, or requests with unknown kids would wait for the limiter",
				c.JWKSUnknownKIDInterval, c.JWKSTimeout)
		}
	}
	if (c.JWKSURL != "" || c.JWKSFile != "") && c.JWKSTimeout <= 0 {
		bad("JWKSTimeout is %v: give a positive timeout, e.g. 5s", c.JWKSTimeout)
	}
	if c.JWKSURL != "" && c.JWKSMaxBytes <= 0 {
		bad("JWKSMaxBytes is %d: give a positive size, e.g. 1048576", c.JWKSMaxBytes)
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		bad("Leeway is %v: give a clock skew between 0 and 5m (the LMS uses 1s)", c.Leeway)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jwt config: %w", err)
	}
	return nil
}
