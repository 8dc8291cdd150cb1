package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// newJWKS builds the key source for RS/ES tokens from the inline set, the
// file and the URL, or returns nil when none is configured. Keys from the
// inline set and the file are fixed; keys from the URL are refreshed.
func newJWKS(ctx context.Context, cfg Config, opts Options) (keyfunc.Keyfunc, error) {
	given := jwkset.NewMemoryStorage()
	if cfg.JWKS != "" {
		if err := addJWKS(ctx, given, []byte(cfg.JWKS)); err != nil {
			return nil, fmt.Errorf("jwt config: JWKS: %w", err)
		}
	}
	if cfg.JWKSFile != "" {
		raw, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwt config: JWKSFile: %w", err)
		}
		if err := addJWKS(ctx, given, raw); err != nil {
			return nil, fmt.Errorf("jwt config: JWKSFile %s: %w", cfg.JWKSFile, err)
		}
	}
	if cfg.JWKSURL == "" {
		if cfg.JWKS == "" && cfg.JWKSFile == "" {
			return nil, nil
		}
		return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: given})
	}

	client := &http.Client{Timeout: cfg.JWKSTimeout}
	if opts.Client != nil {
		c := *opts.Client
		client = &c
	}
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client.Transport = limitBody{next: next, max: cfg.JWKSMaxBytes}

	logger := opts.Logger
	redacted := cfg.JWKSURL
	if u, err := url.Parse(cfg.JWKSURL); err == nil {
		redacted = u.Redacted()
	}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:      client,
		Given:       given,
		HTTPTimeout: cfg.JWKSTimeout,
		// The wait for the unknown-kid limiter is bounded by this too, and
		// the limiter's interval is far longer: a request arriving while the
		// limiter is empty is refused at once instead of waiting.
		RateLimitWaitMax: cfg.JWKSTimeout,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "jwt: JWK set fetch failed", "url", redacted, "err", err)
			}
		},
		RefreshInterval:   cfg.JWKSRefresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSUnknownKIDInterval), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("jwt config: JWKSURL: %w", err)
	}
	return kf, nil
}

// addJWKS parses a JWK set and stores its RSA and EC keys. Other kinds are
// skipped, except shared secrets, which are a configuration mistake; a set
// without one usable key is an error.
func addJWKS(ctx context.Context, store jwkset.Storage, raw []byte) error {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf(`not a JWK set ({"keys":[...]}): %w`, err)
	}
	n := 0
	for i, m := range set.Keys {
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			continue
		}
		if err != nil {
			return fmt.Errorf("key %d (kid %q): %w", i, m.KID, err)
		}
		switch m.KTY {
		case jwkset.KtyRSA, jwkset.KtyEC:
		case jwkset.KtyOct:
			return fmt.Errorf("key %d (kid %q) is a shared secret (oct): put HS256 secrets in Secrets, not in a JWK set", i, m.KID)
		default:
			continue
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("the set holds no usable key: give RSA or EC public keys")
	}
	return nil
}
