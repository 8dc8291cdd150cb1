package jwtauth_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const secret = "lms-secret-0123456789"

func clock() time.Time { return now }

func mustVerifier(t *testing.T, cfg jwtauth.Config) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.New(cfg, jwtauth.Options{Now: clock})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

func config(mutate func(*jwtauth.Config)) jwtauth.Config {
	cfg := jwtauth.DefaultConfig()
	mutate(&cfg)
	return cfg
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// rsaPublicPEM is the RSA public key as an attacker would paste it as an
// HMAC secret in a key-confusion attack.
func rsaPublicPEM(t *testing.T) string {
	der, err := x509.MarshalPKIXPublicKey(&jwttest.RSAKey(0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestVerify(t *testing.T) {
	rsa0, rsa1, ec0 := jwttest.RSAKey(0), jwttest.RSAKey(1), jwttest.ECKey(0)
	set := string(jwttest.JWKS(t,
		jwttest.Key{KID: "rsa0", Public: &rsa0.PublicKey},
		jwttest.Key{KID: "ec0", Public: &ec0.PublicKey},
	))
	base := jwttest.Claims("Alice", now)
	full := config(func(c *jwtauth.Config) {
		c.Secrets = []string{"old-secret-0123456789", secret}
		c.JWKS = set
	})
	strict := config(func(c *jwtauth.Config) {
		c.Secrets = []string{secret}
		c.Issuers = []string{"https://lms.example.com/oauth2", "https://other.example.com/oauth2"}
		c.Audiences = []string{"lms-key", "mobile"}
	})
	jwksOnly := config(func(c *jwtauth.Config) { c.JWKS = set })
	iss := with(base, "iss", "https://lms.example.com/oauth2", "aud", "lms-key")

	tests := []struct {
		name  string
		cfg   jwtauth.Config
		token string
		want  string // username, or the refusal's detail
		ok    bool
		staff bool
	}{
		{"HS256", full, jwttest.HS256(t, secret, base), "Alice", true, false},
		{"HS256 older secret", full, jwttest.HS256(t, "old-secret-0123456789", base), "Alice", true, false},
		{"RS256 by kid", full, jwttest.Sign(t, jwt.SigningMethodRS256, rsa0, "rsa0", base), "Alice", true, false},
		{"RS512 by kid (the LMS's default)", full, jwttest.Sign(t, jwt.SigningMethodRS512, rsa0, "rsa0", base), "Alice", true, false},
		{"RS256 without kid", full, jwttest.Sign(t, jwt.SigningMethodRS256, rsa0, "", base), "Alice", true, false},
		{"ES256 by kid", full, jwttest.Sign(t, jwt.SigningMethodES256, ec0, "ec0", base), "Alice", true, false},
		{"username claim when no preferred_username", full,
			jwttest.HS256(t, secret, with(base, "preferred_username", nil, "username", "bob")), "bob", true, false},
		{"issuer and audience string", strict, jwttest.HS256(t, secret, iss), "Alice", true, false},
		{"second issuer, audience list", strict,
			jwttest.HS256(t, secret, with(iss, "iss", "https://other.example.com/oauth2", "aud", []string{"x", "mobile"})), "Alice", true, false},
		{"expired within leeway", full, jwttest.HS256(t, secret, with(base, "exp", now.Unix())), "Alice", true, false},

		{"version 1.0.0", full, jwttest.HS256(t, secret, with(base, "version", "1.0.0")), "Alice", true, false},
		{"no version", full, jwttest.HS256(t, secret, with(base, "version", nil)), "Alice", true, false},
		{"version 2.0.0", full, jwttest.HS256(t, secret, with(base, "version", "2.0.0")), jwtauth.DetailInvalid, false, false},
		{"version not semantic", full, jwttest.HS256(t, secret, with(base, "version", "one")), jwtauth.DetailInvalid, false, false},
		{"version not a string", full, jwttest.HS256(t, secret, with(base, "version", 1)), jwtauth.DetailMalformed, false, false},
		{"wrong secret", full, jwttest.HS256(t, "not-the-secret", base), jwtauth.DetailInvalid, false, false},
		{"alg none", full, jwttest.None(base), jwtauth.DetailInvalid, false, false},
		{"alg none, JWKS only", jwksOnly, jwttest.None(base), jwtauth.DetailInvalid, false, false},
		{"HS256 with the RSA public key as secret", full, jwttest.HS256(t, rsaPublicPEM(t), base), jwtauth.DetailInvalid, false, false},
		{"HS256 with the RSA public key as secret, JWKS only", jwksOnly,
			jwttest.HS256(t, rsaPublicPEM(t), base), jwtauth.DetailInvalid, false, false},
		{"HS256 naming an RSA kid", jwksOnly,
			jwttest.Sign(t, jwt.SigningMethodHS256, []byte(rsaPublicPEM(t)), "rsa0", base), jwtauth.DetailInvalid, false, false},
		{"RS256 with no JWK set", strict, jwttest.Sign(t, jwt.SigningMethodRS256, rsa0, "rsa0", iss), jwtauth.DetailInvalid, false, false},
		{"RS256 naming an EC kid", full, jwttest.Sign(t, jwt.SigningMethodRS256, rsa0, "ec0", base), jwtauth.DetailInvalid, false, false},
		{"ES256 naming an RSA kid", full, jwttest.Sign(t, jwt.SigningMethodES256, ec0, "rsa0", base), jwtauth.DetailInvalid, false, false},
		{"RS256 by an unknown key", full, jwttest.Sign(t, jwt.SigningMethodRS256, rsa1, "rsa0", base), jwtauth.DetailInvalid, false, false},
		{"unknown kid", full, jwttest.Sign(t, jwt.SigningMethodRS256, rsa1, "rsa1", base), jwtauth.DetailInvalid, false, false},
		{"PS256 is not accepted", full, jwttest.Sign(t, jwt.SigningMethodPS256, rsa0, "rsa0", base), jwtauth.DetailInvalid, false, false},
		{"expired", full, jwttest.HS256(t, secret, with(base, "exp", now.Add(-2*time.Second).Unix())), jwtauth.DetailExpired, false, false},
		{"not before", full, jwttest.HS256(t, secret, with(base, "nbf", now.Add(time.Minute).Unix())), jwtauth.DetailNotYetValid, false, false},
		{"issued in the future", full, jwttest.HS256(t, secret, with(base, "iat", now.Add(time.Minute).Unix())), jwtauth.DetailNotYetValid, false, false},
		{"no exp", full, jwttest.HS256(t, secret, with(base, "exp", nil)), jwtauth.DetailMissingExp, false, false},
		{"wrong issuer", strict, jwttest.HS256(t, secret, with(iss, "iss", "https://evil.example.com")), jwtauth.DetailIssuer, false, false},
		{"no issuer", strict, jwttest.HS256(t, secret, with(iss, "iss", nil)), jwtauth.DetailIssuer, false, false},
		{"wrong audience", strict, jwttest.HS256(t, secret, with(iss, "aud", "someone-else")), jwtauth.DetailAudience, false, false},
		{"wrong audience list", strict, jwttest.HS256(t, secret, with(iss, "aud", []string{"a", "b"})), jwtauth.DetailAudience, false, false},
		{"no audience", strict, jwttest.HS256(t, secret, with(iss, "aud", nil)), jwtauth.DetailMissingAud, false, false},
		{"no username", full, jwttest.HS256(t, secret, with(base, "preferred_username", nil)), jwtauth.DetailNoUsername, false, false},
		{"empty username", full, jwttest.HS256(t, secret, with(base, "preferred_username", "")), jwtauth.DetailNoUsername, false, false},
		{"username not a string", full, jwttest.HS256(t, secret, with(base, "preferred_username", 42)), jwtauth.DetailMalformed, false, false},
		{"exp not a number", full, jwttest.HS256(t, secret, with(base, "exp", "tomorrow")), jwtauth.DetailMalformed, false, false},
		{"empty", full, "", jwtauth.DetailMalformed, false, false},
		{"garbage", full, "not-a-token", jwtauth.DetailMalformed, false, false},
		{"administrator true is staff", full, jwttest.HS256(t, secret, with(base, "administrator", true)), "Alice", true, true},
		{"administrator true is staff, RS256", full,
			jwttest.Sign(t, jwt.SigningMethodRS256, rsa0, "rsa0", with(base, "administrator", true)), "Alice", true, true},
		{"administrator false", full, jwttest.HS256(t, secret, with(base, "administrator", false)), "Alice", true, false},
		{"administrator a string is not staff", full, jwttest.HS256(t, secret, with(base, "administrator", "true")), "Alice", true, false},
		{"three garbage parts", full, "a.b.c", jwtauth.DetailMalformed, false, false},
		{"truncated signature", full, strings.TrimRight(jwttest.HS256(t, secret, base), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), jwtauth.DetailInvalid, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, tt.cfg)
			got, err := v.Verify(context.Background(), tt.token)
			if tt.ok {
				if err != nil || got.Username != tt.want || got.Staff != tt.staff {
					t.Fatalf("Verify = %+v, %v; want %q, staff %v", got, err, tt.want, tt.staff)
				}
				return
			}
			var e *jwtauth.Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify = %+v, %v; want a *jwtauth.Error", got, err)
			}
			if e.Detail != tt.want {
				t.Fatalf("detail = %q (cause %v); want %q", e.Detail, errors.Unwrap(e), tt.want)
			}
			if strings.Contains(e.Error(), tt.token) && tt.token != "" {
				t.Fatalf("error %q contains the token", e.Error())
			}
		})
	}
}

func TestJWKSFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwttest.JWKS(t, jwttest.Key{KID: "k", Public: &jwttest.RSAKey(0).PublicKey}), 0o600); err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, config(func(c *jwtauth.Config) { c.JWKSFile = path }))
	tok := jwttest.Sign(t, jwt.SigningMethodRS256, jwttest.RSAKey(0), "k", jwttest.Claims("a", now))
	if got, err := v.Verify(context.Background(), tok); err != nil || got.Username != "a" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}

// TestJWKSURL follows a key rotation at the issuer: the new kid triggers one
// refresh, and a made-up kid right after is refused without another fetch.
func TestJWKSURL(t *testing.T) {
	k0, k1 := jwttest.RSAKey(0), jwttest.RSAKey(1)
	srv := jwttest.NewServer(t, jwttest.JWKS(t, jwttest.Key{KID: "k0", Public: &k0.PublicKey}))
	v := mustVerifier(t, config(func(c *jwtauth.Config) {
		c.JWKSURL = srv.URL
		c.JWKSUnknownKIDInterval = time.Hour
	}))
	ctx := context.Background()
	claims := jwttest.Claims("alice", now)
	if srv.Hits() != 1 {
		t.Fatalf("fetches after New = %d, want 1", srv.Hits())
	}
	if _, err := v.Verify(ctx, jwttest.Sign(t, jwt.SigningMethodRS256, k0, "k0", claims)); err != nil {
		t.Fatalf("k0: %v", err)
	}
	if srv.Hits() != 1 {
		t.Fatalf("a known kid fetched the set again: %d fetches", srv.Hits())
	}

	srv.SetJWKS(jwttest.JWKS(t, jwttest.Key{KID: "k1", Public: &k1.PublicKey}))
	if _, err := v.Verify(ctx, jwttest.Sign(t, jwt.SigningMethodRS256, k1, "k1", claims)); err != nil {
		t.Fatalf("k1 after rotation: %v", err)
	}
	if srv.Hits() != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", srv.Hits())
	}
	// The refresh replaced the set: k0 is revoked.
	if _, err := v.Verify(ctx, jwttest.Sign(t, jwt.SigningMethodRS256, k0, "k0", claims)); err == nil {
		t.Fatal("k0 still accepted after it left the set")
	}

	start := time.Now()
	for i := range 5 {
		_, err := v.Verify(ctx, jwttest.Sign(t, jwt.SigningMethodRS256, k1, "made-up", claims))
		var e *jwtauth.Error
		if !errors.As(err, &e) || e.Detail != jwtauth.DetailInvalid {
			t.Fatalf("made-up kid %d: %v", i, err)
		}
	}
	if srv.Hits() != 2 {
		t.Fatalf("made-up kids fetched the set: %d fetches, want 2", srv.Hits())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusing rate-limited kids took %v: requests waited on the limiter", d)
	}
}

func TestJWKSURLTooLarge(t *testing.T) {
	set := jwttest.JWKS(t, jwttest.Key{KID: "k0", Public: &jwttest.RSAKey(0).PublicKey})
	srv := jwttest.NewServer(t, set)
	v := mustVerifier(t, config(func(c *jwtauth.Config) {
		c.JWKSURL = srv.URL
		c.JWKSMaxBytes = int64(len(set) - 1)
	}))
	tok := jwttest.Sign(t, jwt.SigningMethodRS256, jwttest.RSAKey(0), "k0", jwttest.Claims("a", now))
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("a key from an oversized JWK set was accepted")
	}

	v = mustVerifier(t, config(func(c *jwtauth.Config) {
		c.JWKSURL = srv.URL
		c.JWKSMaxBytes = int64(len(set))
	}))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("a set of exactly JWKSMaxBytes: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	oct := `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}`
	tests := []struct {
		name string
		cfg  jwtauth.Config
		want string
	}{
		{"no key", jwtauth.DefaultConfig(), "set at least one of Secrets"},
		{"blank secret", config(func(c *jwtauth.Config) { c.Secrets = []string{""} }), "Secrets[0] is empty"},
		{"bad URL", config(func(c *jwtauth.Config) { c.JWKSURL = "ftp://x" }), "not an http(s) URL"},
		{"bad JSON", config(func(c *jwtauth.Config) { c.JWKS = "{" }), "not valid JSON"},
		{"no usable key", config(func(c *jwtauth.Config) { c.JWKS = `{"keys":[]}` }), "no usable key"},
		{"shared secret in JWKS", config(func(c *jwtauth.Config) { c.JWKS = oct }), "put HS256 secrets in Secrets"},
		{"missing file", config(func(c *jwtauth.Config) { c.JWKSFile = "/nonexistent/jwks.json" }), "JWKSFile"},
		{"leeway", config(func(c *jwtauth.Config) { c.Secrets = []string{"s"}; c.Leeway = time.Hour }), "Leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jwtauth.New(tt.cfg, jwtauth.Options{})
			if err == nil {
				v.Close()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}
