package jwtauth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
)

// FuzzVerify feeds arbitrary tokens to a verifier holding a secret and a JWK
// set: it never panics, and every refusal is an *Error with a detail.
func FuzzVerify(f *testing.F) {
	k := jwttest.RSAKey(0)
	v, err := jwtauth.New(config(func(c *jwtauth.Config) {
		c.Secrets = []string{secret}
		c.JWKS = string(jwttest.JWKS(f, jwttest.Key{KID: "k", Public: &k.PublicKey}))
	}), jwtauth.Options{Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	claims := jwttest.Claims("alice", now)
	f.Add(jwttest.HS256(f, secret, claims))
	f.Add(jwttest.Sign(f, jwt.SigningMethodRS256, k, "k", claims))
	f.Add(jwttest.None(claims))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		user, err := v.Verify(context.Background(), token)
		if err == nil {
			if user.Username == "" {
				t.Fatalf("Verify(%q) accepted a token without a user", token)
			}
			return
		}
		var e *jwtauth.Error
		if !errors.As(err, &e) || e.Detail == "" {
			t.Fatalf("Verify(%q) = %v, not an *Error with a detail", token, err)
		}
	})
}
