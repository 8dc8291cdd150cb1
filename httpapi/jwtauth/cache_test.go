package jwtauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
)

// TestCacheKeepsEveryCheck: a token served from the cache of verified
// tokens is still refused once it expires or once the cache's TTL passes
// after its secret was removed, and a token differing in one byte is never
// served from the cache.
func TestCacheKeepsEveryCheck(t *testing.T) {
	at := now
	clock := func() time.Time { return at }
	cfg := jwtauth.DefaultConfig()
	cfg.Secrets = []string{"s3cret"}
	cfg.CacheTTL = 10 * time.Minute
	v, err := jwtauth.New(cfg, jwtauth.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()

	claims := jwttest.Claims("alice", at)
	claims["exp"] = at.Add(5 * time.Second).Unix()
	tok := jwttest.Sign(t, jwt.SigningMethodHS256, []byte("s3cret"), "", claims)
	for range 3 { // verified, then from the cache
		if got, err := v.Verify(ctx, tok); err != nil || got.Username != "alice" {
			t.Fatalf("Verify = %+v, %v", got, err)
		}
	}
	tampered := tok[:len(tok)-2] + "AA"
	if tampered == tok {
		tampered = tok[:len(tok)-2] + "BB"
	}
	if _, err := v.Verify(ctx, tampered); err == nil {
		t.Fatal("a tampered token was accepted (served from the cache?)")
	}
	at = at.Add(5*time.Second + cfg.Leeway + time.Millisecond)
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("an expired token was served from the cache")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	for _, size := range []int{0, 16384} {
		name := "uncached"
		if size > 0 {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			cfg := jwtauth.DefaultConfig()
			cfg.Secrets = []string{"s3cret"}
			cfg.CacheSize = size
			v, err := jwtauth.New(cfg, jwtauth.Options{Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			tok := jwttest.Sign(b, jwt.SigningMethodHS256, []byte("s3cret"), "", jwttest.Claims("alice", now))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
