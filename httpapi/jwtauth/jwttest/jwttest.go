// Package jwttest mints JWTs and serves JWK sets for tests of code that
// authenticates with jwtauth. It is test support: production code must not
// import it.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

var (
	keysMu  sync.Mutex
	rsaKeys = map[int]*rsa.PrivateKey{}
	ecKeys  = map[int]*ecdsa.PrivateKey{}
)

// RSAKey returns the i-th RSA 2048 test key, generated once per process.
func RSAKey(i int) *rsa.PrivateKey {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := rsaKeys[i]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	rsaKeys[i] = k
	return k
}

// ECKey returns the i-th ECDSA P-256 test key, generated once per process.
func ECKey(i int) *ecdsa.PrivateKey {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := ecKeys[i]; ok {
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	ecKeys[i] = k
	return k
}

// Claims returns the claims of a valid LMS-like token for username, issued
// at now and valid for an hour.
func Claims(username string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"preferred_username": username,
		"iat":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"version":            "1.2.0",
	}
}

// Sign signs claims with method and key, setting the kid header when kid
// is not empty.
func Sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("jwttest: sign: %v", err)
	}
	return s
}

// HS256 signs claims with a shared secret.
func HS256(t testing.TB, secret string, claims jwt.MapClaims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims)
}

// None returns an unsigned token (alg "none") carrying claims.
func None(claims jwt.MapClaims) string {
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	body, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(body) + "."
}

// Key is one public key of a JWK set.
type Key struct {
	KID    string
	Public crypto.PublicKey
}

// JWKS returns the JSON JWK set of keys, in order.
func JWKS(t testing.TB, keys ...Key) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Public, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatalf("jwttest: JWK of %s: %v", k.KID, err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("jwttest: marshal JWK set: %v", err)
	}
	return b
}

// Server serves a JWK set over HTTP on loopback and counts its fetches.
type Server struct {
	*httptest.Server
	mu   sync.Mutex
	set  []byte
	hits atomic.Int64
}

// NewServer starts a Server serving set; it is closed when the test ends.
func NewServer(t testing.TB, set []byte) *Server {
	s := &Server{set: set}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		b := s.set
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// SetJWKS replaces the served set, as a key rotation at the issuer does.
func (s *Server) SetJWKS(set []byte) {
	s.mu.Lock()
	s.set = set
	s.mu.Unlock()
}

// Hits is how many times the set was fetched.
func (s *Server) Hits() int64 { return s.hits.Load() }
