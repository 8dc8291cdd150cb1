package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Details of a refusal: which check failed, without anything about the
// keys. They are for logs and tests; a client is told ClientDetail, as the
// LMS tells it.
const (
	DetailMalformed   = "Error decoding signature."
	DetailExpired     = "Signature has expired."
	DetailNotYetValid = "Token is not yet valid."
	DetailIssuer      = "Invalid issuer."
	DetailAudience    = "Invalid audience."
	DetailMissingExp  = `Token is missing the "exp" claim.`
	DetailMissingAud  = `Token is missing the "aud" claim.`
	DetailInvalid     = "Invalid token."
	DetailNoUsername  = "JWT must include a preferred_username or username claim!"
)

// Error is why a token was refused. Detail names the failed check and
// never contains the token; Unwrap gives the cause; both are for logs.
type Error struct {
	Detail string
	cause  error
}

func (e *Error) Error() string { return e.Detail }
func (e *Error) Unwrap() error { return e.cause }

// ClientDetail is what the LMS answers for this refusal. Its decoder
// (edx-drf-extensions) turns every failure of a token's signature, expiry,
// audience, issuer, required claims or version into one InvalidTokenError,
// which drf-jwt answers "Invalid token."; only a token without a username,
// refused later by JwtAuthentication, gets words of its own.
func (e *Error) ClientDetail() string {
	if e.Detail == DetailNoUsername {
		return DetailNoUsername
	}
	return DetailInvalid
}

// Options are the Verifier's collaborators. Every field may be left zero.
type Options struct {
	// Logger receives JWKS refresh failures. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock exp, nbf and iat are checked against. Nil: time.Now.
	Now func() time.Time
	// Client fetches JWKSURL. Nil: a client with Config.JWKSTimeout. Either
	// way, responses larger than Config.JWKSMaxBytes are refused.
	Client *http.Client
}

// Verifier checks JWTs. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	secrets jwt.VerificationKeySet // HS256; empty when none are configured
	jwks    keyfunc.Keyfunc        // RS/ES; nil when no JWK set is configured
	issuers []string
	stop    context.CancelFunc
	now     func() time.Time
	leeway  time.Duration
	cache   *tokenCache // nil: off
	fast    *fastHS256  // nil: no HS256 secret
}

// Algorithms accepted with each kind of key. An algorithm is only ever
// verified against its own kind of key: HS256 against the shared secrets, the
// others against the JWK set's RSA or EC public keys of the matching curve.
// So a JWK set never verifies an HS256 token (no key confusion), and "none"
// is never accepted.
var (
	hmacAlgs       = []string{"HS256"}
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
)

// New builds a Verifier. When cfg.JWKSURL is set it fetches the set once
// (a failure is logged: the set is fetched again on the first unknown kid)
// and starts the background refresh, which runs until Close.
func New(cfg Config, opts Options) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, stop := context.WithCancel(context.Background())
	v := &Verifier{issuers: slices.Clone(cfg.Issuers), stop: stop, now: opts.Now, leeway: cfg.Leeway,
		cache: newTokenCache(cfg.CacheSize, cfg.CacheTTL)}
	var methods []string
	for _, s := range cfg.Secrets {
		v.secrets.Keys = append(v.secrets.Keys, []byte(s))
	}
	if len(v.secrets.Keys) > 0 {
		methods = append(methods, hmacAlgs...)
		keys := make([][]byte, len(cfg.Secrets))
		for i, s := range cfg.Secrets {
			keys[i] = []byte(s)
		}
		v.fast = newFastHS256(keys, v.issuers, slices.Clone(cfg.Audiences), cfg.Leeway)
	}
	jwks, err := newJWKS(ctx, cfg, opts)
	if err != nil {
		stop()
		return nil, err
	}
	if jwks != nil {
		v.jwks = jwks
		methods = append(methods, asymmetricAlgs...)
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(opts.Now),
	}
	if len(cfg.Audiences) > 0 {
		popts = append(popts, jwt.WithAudience(cfg.Audiences...))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Close stops the background refresh of the JWK set.
func (v *Verifier) Close() { v.stop() }

// claims is what the service reads from a token.
type claims struct {
	jwt.RegisteredClaims
	PreferredUsername string `json:"preferred_username"`
	// Username is read when preferred_username is absent, as
	// edx-drf-extensions does for old tokens.
	Username string `json:"username"`
	// Version is the LMS's token format version, "1.2.0" today.
	Version *string `json:"version"`
	// Administrator is the LMS's is_staff (its profile claims); only the
	// JSON literal true makes a caller staff, and any value is accepted.
	Administrator json.RawMessage `json:"administrator"`
}

// supportedMajor is the newest major token version accepted, as the LMS's
// JWT_SUPPORTED_VERSION (1.2.0) does: a token of a later major version has
// claims this service would misread.
const supportedMajor = 1

// Identity is who a verified token speaks for.
type Identity struct {
	Username string
	// Staff is the token's administrator claim, true: the LMS's is_staff,
	// which edx-drf-extensions copies from it onto the user.
	Staff bool
}

// Verify checks a token (the part after "JWT " or "Bearer ") and returns
// whom it was issued for. A refusal is an *Error. ctx bounds the refresh
// of the JWK set that an unknown kid may trigger.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	now := v.now()
	key := v.cache.key(token)
	if e, ok := v.cache.get(key, now); ok && v.keyStillThere(ctx, e.kid) {
		return e.id, nil
	}
	id, exp, ok := v.fast.verify(token, now)
	var kid string
	if !ok {
		var err error
		if id, exp, kid, err = v.verify(ctx, token); err != nil {
			return Identity{}, err
		}
	}
	v.cache.put(key, cachedToken{id: id, kid: kid}, now, exp.Add(v.leeway))
	return id, nil
}

// keyStillThere reports whether the JWK set still holds kid ("" is an HS256
// token, whose secrets do not change while the process runs).
func (v *Verifier) keyStillThere(ctx context.Context, kid string) bool {
	if kid == "" || v.jwks == nil {
		return kid == ""
	}
	_, err := v.jwks.Storage().KeyRead(ctx, kid)
	return err == nil
}

// verify checks a token fully and returns its identity, expiry and, for a
// token verified against the JWK set, its kid.
func (v *Verifier) verify(ctx context.Context, token string) (Identity, time.Time, string, error) {
	var c claims
	var kid string
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if slices.Contains(asymmetricAlgs, t.Method.Alg()) {
			kid, _ = t.Header["kid"].(string)
		}
		return v.key(ctx, t)
	})
	if err != nil {
		return Identity{}, time.Time{}, "", refusal(err, &c)
	}
	if len(v.issuers) > 0 && !slices.Contains(v.issuers, c.Issuer) {
		return Identity{}, time.Time{}, "", &Error{Detail: DetailIssuer, cause: fmt.Errorf("issuer %q is not accepted", c.Issuer)}
	}
	if c.Version != nil && !supportedVersion(*c.Version) {
		return Identity{}, time.Time{}, "", &Error{Detail: DetailInvalid, cause: fmt.Errorf("token version %q is unsupported", *c.Version)}
	}
	username := c.PreferredUsername
	if username == "" {
		username = c.Username
	}
	if username == "" {
		return Identity{}, time.Time{}, "", &Error{Detail: DetailNoUsername}
	}
	id := Identity{Username: username, Staff: string(c.Administrator) == "true"}
	return id, c.ExpiresAt.Time, kid, nil // exp is required: the parser checked it
}

// supportedVersion reports whether v is a semantic version whose major
// number is at most supportedMajor.
func supportedVersion(v string) bool {
	major, rest, ok := strings.Cut(v, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return false
	}
	n, err := strconv.Atoi(major)
	return err == nil && n >= 0 && n <= supportedMajor && major == strconv.Itoa(n)
}

// refusal names the first failed check, in the order PyJWT reports them.
func refusal(err error, c *claims) *Error {
	detail := DetailInvalid
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		detail = DetailMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		detail = DetailInvalid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		detail = DetailMissingAud
		if c.ExpiresAt == nil {
			detail = DetailMissingExp
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		detail = DetailExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		detail = DetailNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		detail = DetailAudience
	}
	return &Error{Detail: detail, cause: err}
}

// key returns the keys that may verify t: the shared secrets for HS256, the
// JWK set's keys of the right type for the others.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch {
	case slices.Contains(hmacAlgs, alg) && len(v.secrets.Keys) > 0:
		return v.secrets, nil
	case slices.Contains(asymmetricAlgs, alg) && v.jwks != nil:
		k, err := v.jwks.KeyfuncCtx(ctx)(t)
		if err != nil {
			return nil, err
		}
		set, ok := k.(jwt.VerificationKeySet)
		if !ok {
			set.Keys = []jwt.VerificationKey{k}
		}
		var fit jwt.VerificationKeySet
		for _, k := range set.Keys {
			if fits(alg, k) {
				fit.Keys = append(fit.Keys, k)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, fmt.Errorf("no %s key in the JWK set for this token", alg)
		}
		return fit, nil
	}
	return nil, fmt.Errorf("algorithm %q is not accepted", alg)
}

// fits reports whether key is of the type, and curve, that alg needs.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "RS384" || alg == "RS512"
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	}
	return false
}

// limitBody refuses response bodies over max bytes, so a misbehaving key
// server cannot make the service buffer an unbounded JWK set.
type limitBody struct {
	next http.RoundTripper
	max  int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: l.max}
	return resp, nil
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

var errTooLarge = errors.New("JWK set response is larger than JWKSMaxBytes")

func (b *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		return 0, errTooLarge
	}
	b.left -= int64(n)
	return n, err
}
