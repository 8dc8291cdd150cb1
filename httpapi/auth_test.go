package httpapi_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/enrollstatus/enrollstatus/httpapi"
	"github.com/enrollstatus/enrollstatus/httpapi/jwtauth/jwttest"
)

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

// TestAuthRejections sends each kind of bad credentials through HTTP: every
// one is a 401 with a JSON detail and WWW-Authenticate, and nothing of the
// token reaches the logs.
func TestAuthRejections(t *testing.T) {
	k0 := jwttest.RSAKey(0)
	jwks := jwttest.NewServer(t, jwttest.JWKS(t, jwttest.Key{KID: "k0", Public: &k0.PublicKey}))
	e := startServer(t, func(c *httpapi.Config) {
		c.JWT.Issuers = []string{"https://lms.example.com/oauth2"}
		c.JWT.Audiences = []string{"lms-key"}
		c.JWT.JWKSURL = jwks.URL
		c.JWT.JWKSUnknownKIDInterval = time.Hour
	})
	good := with(jwttest.Claims("alice", now), "iss", "https://lms.example.com/oauth2", "aud", []string{"lms-key"})
	der, err := x509.MarshalPKIXPublicKey(&k0.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	hs := func(c jwt.MapClaims) string { return jwttest.HS256(t, secret, c) }
	rs := func(kid string, c jwt.MapClaims) string { return jwttest.Sign(t, jwt.SigningMethodRS256, k0, kid, c) }
	const path = "/api/mobile/v4/users/alice/enrollments_status/"

	// The valid tokens first, so that a failure below is the check's.
	for _, tok := range []string{hs(good), rs("k0", good), jwttest.Sign(t, jwt.SigningMethodRS512, k0, "k0", good)} {
		if r := e.do(t, "GET", path, "Authorization", "JWT "+tok); r.code != 200 {
			t.Fatalf("valid token: %d %s", r.code, r.body)
		}
	}

	// The LMS's decoder (edx-drf-extensions) raises one InvalidTokenError
	// for every failed check, which drf-jwt answers "Invalid token."; only
	// a token without a username has words of its own.
	tests := []struct {
		name    string
		headers []string
		target  string
		detail  string
	}{
		{"alg none", []string{"Authorization", "JWT " + jwttest.None(good)}, path, "Invalid token."},
		{"HS256 signed with the RSA public key", []string{"Authorization", "JWT " + jwttest.HS256(t, pubPEM, good)}, path, "Invalid token."},
		{"HS256 with an RSA kid", []string{"Authorization", "JWT " +
			jwttest.Sign(t, jwt.SigningMethodHS256, []byte(pubPEM), "k0", good)}, path, "Invalid token."},
		{"expired", []string{"Authorization", "JWT " + hs(with(good, "exp", now.Add(-time.Minute).Unix()))}, path, "Invalid token."},
		{"not yet valid", []string{"Authorization", "JWT " + hs(with(good, "nbf", now.Add(time.Minute).Unix()))}, path, "Invalid token."},
		{"wrong issuer", []string{"Authorization", "JWT " + hs(with(good, "iss", "https://evil.example.com"))}, path, "Invalid token."},
		{"wrong audience", []string{"Authorization", "JWT " + hs(with(good, "aud", "other"))}, path, "Invalid token."},
		{"unknown kid", []string{"Authorization", "JWT " + rs("k9", good)}, path, "Invalid token."},
		{"bad signature", []string{"Authorization", "JWT " + jwttest.HS256(t, "another-secret", good)}, path, "Invalid token."},
		{"bad RSA signature", []string{"Authorization", "JWT " +
			jwttest.Sign(t, jwt.SigningMethodRS256, jwttest.RSAKey(1), "k0", good)}, path, "Invalid token."},
		{"malformed", []string{"Authorization", "JWT abc.def"}, path, "Invalid token."},
		{"garbage", []string{"Authorization", "Bearer ###garbage\x80\xff"}, path, "Invalid token."},
		{"missing username", []string{"Authorization", "JWT " + hs(with(good, "preferred_username", nil))}, path,
			"JWT must include a preferred_username or username claim!"},
		{"missing exp", []string{"Authorization", "JWT " + hs(with(good, "exp", nil))}, path, "Invalid token."},
		{"token in the query string", nil, path + "?token=" + hs(good), "Authentication credentials were not provided."},
		{"access_token in the query string", nil, path + "?access_token=" + hs(good), "Authentication credentials were not provided."},
		{"jwt in the query string", nil, path + "?jwt=" + hs(good), "Authentication credentials were not provided."},
		{"cookie", []string{"Cookie", "edx-jwt-cookie=" + hs(good)}, path, "Authentication credentials were not provided."},
		{"Basic scheme", []string{"Authorization", "Basic YWxpY2U6cHc="}, path, "Authentication credentials were not provided."},
		{"Token scheme", []string{"Authorization", "Token " + hs(good)}, path, "Authentication credentials were not provided."},
		{"scheme alone", []string{"Authorization", "JWT"}, path, "Authentication credentials were not provided."},
		{"scheme and space", []string{"Authorization", "JWT "}, path, "Authentication credentials were not provided."},
		{"two spaces", []string{"Authorization", "JWT  " + hs(good)}, path, "Authentication credentials were not provided."},
		{"tab", []string{"Authorization", "JWT\t" + hs(good)}, path, "Authentication credentials were not provided."},
		{"extra word", []string{"Authorization", "JWT " + hs(good) + " x"}, path, "Authentication credentials were not provided."},
		{"two headers", []string{"Authorization", "JWT " + hs(good), "Authorization", "JWT " + hs(good)}, path,
			"Authentication credentials were not provided."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "GET", tt.target, tt.headers...)
			want := `{"detail":"` + strings.ReplaceAll(tt.detail, `"`, `\"`) + `"}`
			if r.code != 401 || r.body != want {
				t.Fatalf("= %d %s; want 401 %s", r.code, r.body, want)
			}
			if got := r.header.Get("WWW-Authenticate"); got != `JWT realm="api"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
	if strings.Contains(e.logs.String(), "eyJ") {
		t.Errorf("a token reached the logs:\n%s", e.logs.String())
	}
	if jwks.Hits() != 2 {
		t.Errorf("JWK set fetched %d times; want 2 (start, then one unknown kid)", jwks.Hits())
	}
}

// TestAuthSchemes accepts JWT and Bearer in any case.
func TestAuthSchemes(t *testing.T) {
	e := startServer(t, nil)
	tok := token(t, "alice")
	for _, scheme := range []string{"JWT", "jwt", "Jwt", "Bearer", "bearer", "BEARER"} {
		r := e.do(t, "GET", "/api/mobile/v4/users/alice/enrollments_status/", "Authorization", scheme+" "+tok)
		if r.code != 200 || r.body != demoBody {
			t.Errorf("%s: %d %s", scheme, r.code, r.body)
		}
	}
}

// TestJWKSRotation follows a key rotation at the LMS through HTTP: the new
// kid is fetched once; made-up kids right after are refused without
// fetching again.
func TestJWKSRotation(t *testing.T) {
	k0, k1 := jwttest.RSAKey(0), jwttest.ECKey(1)
	jwks := jwttest.NewServer(t, jwttest.JWKS(t, jwttest.Key{KID: "k0", Public: &k0.PublicKey}))
	e := startServer(t, func(c *httpapi.Config) {
		c.JWT.Secrets = nil
		c.JWT.JWKSURL = jwks.URL
		c.JWT.JWKSUnknownKIDInterval = time.Hour
	})
	const path = "/api/mobile/v4/users/alice/enrollments_status/"
	claims := jwttest.Claims("alice", now)
	get := func(tok string) response { return e.do(t, "GET", path, "Authorization", "Bearer "+tok) }

	if r := get(jwttest.Sign(t, jwt.SigningMethodRS256, k0, "k0", claims)); r.code != 200 {
		t.Fatalf("k0: %d %s", r.code, r.body)
	}
	jwks.SetJWKS(jwttest.JWKS(t, jwttest.Key{KID: "k0", Public: &k0.PublicKey}, jwttest.Key{KID: "k1", Public: &k1.PublicKey}))
	if r := get(jwttest.Sign(t, jwt.SigningMethodES256, k1, "k1", claims)); r.code != 200 {
		t.Fatalf("k1 after rotation: %d %s", r.code, r.body)
	}
	if jwks.Hits() != 2 {
		t.Fatalf("fetches = %d; want 2", jwks.Hits())
	}
	for range 10 {
		if r := get(jwttest.Sign(t, jwt.SigningMethodES256, k1, "k2", claims)); r.code != 401 {
			t.Fatalf("made-up kid: %d %s", r.code, r.body)
		}
	}
	if jwks.Hits() != 2 {
		t.Fatalf("made-up kids fetched the set: %d fetches; want 2", jwks.Hits())
	}
	// HS256 is refused outright when no secret is configured.
	if r := get(token(t, "alice")); r.code != 401 || r.body != `{"detail":"Invalid token."}` {
		t.Fatalf("HS256 without secrets: %d %s", r.code, r.body)
	}
}
