package jwtauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fast path must accept only tokens the full path accepts, with the same
// username and expiry. These tests compare the two on tokens signed with the
// configured secrets, so that the claims, not the signature, decide.

var fastNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	fastSecret  = "lms-secret-0123456789"
	fastSecret2 = "older-secret-9876543210"
	fastIssuer  = "https://lms.example.com/oauth2"
)

// fastVerifiers are the configurations compared: with an issuer and
// audiences to check, and without.
func fastVerifiers(t testing.TB) []*Verifier {
	t.Helper()
	var out []*Verifier
	for _, strict := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.Secrets = []string{fastSecret, fastSecret2}
		if strict {
			cfg.Issuers = []string{fastIssuer, "https://other.example.com/oauth2"}
			cfg.Audiences = []string{"openedx", "mobile"}
		}
		v, err := New(cfg, Options{Now: func() time.Time { return fastNow }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		out = append(out, v)
	}
	return out
}

// signHS256 makes a token of a raw header and payload, signed with secret.
func signHS256(header, payload, secret string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

// checkFast fails when the fast path accepts token and the full path does
// not, or answers another identity or expiry; it reports whether the fast
// path took the token.
func checkFast(t testing.TB, v *Verifier, token string) bool {
	t.Helper()
	user, exp, ok := v.fast.verify(token, fastNow)
	if !ok {
		return false
	}
	fullUser, fullExp, kid, err := v.verify(context.Background(), token)
	if err != nil {
		t.Fatalf("fast path accepted a token the full path refuses (%v):\n%s", err, token)
	}
	if user != fullUser || !exp.Equal(fullExp) || kid != "" {
		t.Fatalf("fast path answered %+v, %v; full path %+v, %v, kid %q:\n%s", user, exp, fullUser, fullExp, kid, token)
	}
	return true
}

const lmsHeader = `{"alg":"HS256","typ":"JWT"}`

// lmsPayload is the claims of a token as the LMS issues it, with extra
// spliced in after the first claim.
func lmsPayload(extra string) string {
	exp, iat := fastNow.Add(time.Hour).Unix(), fastNow.Unix()
	return fmt.Sprintf(`{"aud":"openedx"%s,"iss":%q,"exp":%d,"iat":%d,"preferred_username":"alice",`+
		`"sub":"0123456789abcdef0123456789abcdef","email":"alice@example.com","email_verified":true,`+
		`"name":"Learner alice","given_name":"","family_name":"","administrator":false,"superuser":false,`+
		`"version":"1.2.0","scopes":["read","write","email","profile"],"filters":["user:me"],`+
		`"is_restricted":false,"grant_type":"password"}`, extra, fastIssuer, exp, iat)
}

// fastCorpus is claims the fast path must take (took) and shapes it must
// leave to the full path or read exactly as it does.
func fastCorpus() (took []string, others []string) {
	exp := fastNow.Add(time.Hour).Unix()
	took = []string{
		lmsPayload(""),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		fmt.Sprintf(` { "preferred_username" : "bob" ,	"exp"	: %d , "aud" : [ "x" , "mobile" ] , "iss" : %q }
`, exp, fastIssuer),
		fmt.Sprintf(`{"username":"carol","exp":%d,"aud":["openedx"],"iss":%q}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"","username":"dave","exp":%d,"aud":"mobile","iss":%q}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"José","exp":%d,"aud":"openedx","iss":%q,"name":"Jos\u00e9 \"J\""}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"nbf":%d,"iat":%d,"aud":"openedx","iss":%q,"jti":"a\nb","sub":"\ud83d\ude00"}`,
			exp, fastNow.Unix(), fastNow.Unix()+1, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"x":{"a":[1,-2.5e+3,0.1,true,false,null,{"b":{}}],"c":[]}}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":"1.0.0"}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":"0.9.9"}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q}`, fastNow.Unix(), fastIssuer), // within leeway
		strings.Replace(lmsPayload(""), `"administrator":false`, `"administrator":true`, 1),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"administrator" : true }`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"administrator":"true"}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"administrator":1}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"administrator":null}`, exp, fastIssuer),
		fmt.Sprintf(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"administrator":[true]}`, exp, fastIssuer),
	}
	p := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	others = []string{
		lmsPayload(`,"exp":1`),                        // duplicate
		lmsPayload(`,"EXP":1`),                        // folds to exp
		lmsPayload(`,"Preferred_Username":"mallory"`), // folds
		lmsPayload(`,"ADMINISTRATOR":true`),           // folds (and a duplicate)
		lmsPayload(`,"x":1,"administrator":true`),     // duplicate
		lmsPayload(`,"ſub":"x"`),                      // folds with Unicode
		lmsPayload(`,"\u0065xp":1`),                   // escaped key
		lmsPayload(`,"username":"eve"`),               // preferred_username wins
		lmsPayload(`,"nbf":` + p("%d", exp)),          // not yet valid
		lmsPayload(`,"nbf":null`),                     // null
		lmsPayload(`,"x":01`),                         // invalid number
		lmsPayload(`,"x":1.`),                         // invalid number
		lmsPayload(`,"x":-`),                          // invalid number
		lmsPayload(`,"x":1e`),                         // invalid number
		lmsPayload(`,"x":tru`),                        // invalid literal
		lmsPayload(`,"x":"\x"`),                       // invalid escape
		lmsPayload(`,"x":"\u12"`),                     // short escape
		lmsPayload(`,"x":"a` + "\x01" + `"`),          // control character
		lmsPayload(`,"x":"` + "\xff" + `"`),           // invalid UTF-8 in an unread claim
		lmsPayload(`,"x":[1,]`),                       // trailing comma
		lmsPayload(`,"x":{"a":1,}`),                   // trailing comma
		lmsPayload(`,"x":{"a"}`),                      // missing value
		lmsPayload(`,"x":{1:2}`),                      // non-string key
		lmsPayload(`,`),                               // trailing comma
		lmsPayload(`,"sub":5`),                        // sub not a string
		lmsPayload(`,"jti":null`),                     // null
		lmsPayload(`,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)),
		lmsPayload("") + " x", // trailing data
		lmsPayload("") + "{}", // two objects
		p(`{"preferred_username":"alice","exp":%d.5,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%de0,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":"%d","aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":-1,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":1e300,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":99999999999999999999,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":999999999999999,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":0999,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":null,"aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","aud":"openedx","iss":%q}`, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q}`, fastNow.Unix()-1, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"iat":%d,"aud":"openedx","iss":%q}`, exp, fastNow.Unix()+2, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":[],"iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":[""],"iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":["a","b","c","d","e","mobile"],"iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":["openedx",1],"iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":null,"iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"other","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":"https://evil.example.com"}`, exp),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx"}`, exp),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":"https:\/\/lms.example.com\/oauth2"}`, exp),
		p(`{"preferred_username":"al\u0069ce","exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"al`+"\xe9"+`ce","exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":5,"exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":null,"username":"u","exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"exp":%d,"aud":"openedx","iss":%q}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":"2.0.0"}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":"01.0.0"}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":1}`, exp, fastIssuer),
		p(`{"preferred_username":"alice","exp":%d,"aud":"openedx","iss":%q,"version":null}`, exp, fastIssuer),
		`{}`, `[]`, `null`, `"x"`, ``, `{`, `{"a":1`, `{"a" 1}`,
	}
	return took, others
}

func TestFastPathAgrees(t *testing.T) {
	strict, lax := fastVerifiers(t)[0], fastVerifiers(t)[1]
	took, others := fastCorpus()
	for _, payload := range took {
		for _, secret := range []string{fastSecret, fastSecret2} {
			tok := signHS256(lmsHeader, payload, secret)
			for _, v := range []*Verifier{strict, lax} {
				if !checkFast(t, v, tok) {
					t.Errorf("the fast path left a plain LMS-like token to the full path:\n%s", payload)
				}
			}
		}
	}
	for _, payload := range others {
		for _, v := range []*Verifier{strict, lax} {
			checkFast(t, v, signHS256(lmsHeader, payload, fastSecret))
		}
	}
	// Headers and signatures.
	payload := took[0]
	good := signHS256(lmsHeader, payload, fastSecret)
	for _, tok := range []string{
		signHS256(`{"typ":"JWT","alg":"HS256","kid":"k"}`, payload, fastSecret),
		signHS256(` {"alg" : "HS256"} `, payload, fastSecret),
		signHS256(`{"alg":"HS256","alg":"HS384"}`, payload, fastSecret),
		signHS256(`{"alg":"HS384","alg":"HS256"}`, payload, fastSecret),
		signHS256(`{"alg":"HS384"}`, payload, fastSecret),
		signHS256(`{"alg":"none"}`, payload, fastSecret),
		signHS256(`{"alg":"hs256"}`, payload, fastSecret),
		signHS256(`{"ALG":"HS256"}`, payload, fastSecret),
		signHS256(`{"alg":["HS256"]}`, payload, fastSecret),
		signHS256(`null`, payload, fastSecret),
		signHS256(`{"alg":"HS256"`, payload, fastSecret),
		signHS256(lmsHeader, payload, "not-the-secret"),
		good[:len(good)-1],
		good + "A",
		good + ".",
		good[:len(good)-1] + string(good[len(good)-1]^1),
		strings.Replace(good, ".", "..", 1),
		strings.TrimSuffix(good, good[strings.LastIndexByte(good, '.')+1:]),
		good[:strings.IndexByte(good, '.')] + "=" + good[strings.IndexByte(good, '.'):],
		good + "\n",
		"",
		".",
		"..",
	} {
		for _, v := range []*Verifier{strict, lax} {
			checkFast(t, v, tok)
		}
	}
}

// TestFastPathHeaders: the remembered header segments are only those of
// tokens that verified, and there are never more than maxFastHeaders.
func TestFastPathHeaders(t *testing.T) {
	v := fastVerifiers(t)[1]
	payload, _ := fastCorpus()
	for i := range 3 * maxFastHeaders {
		h := fmt.Sprintf(`{"alg":"HS256","n":%d}`, i)
		checkFast(t, v, signHS256(h, payload[0], "not-the-secret"))
	}
	if n := len(*v.fast.headers.Load()); n != 0 {
		t.Fatalf("%d headers remembered from tokens that did not verify", n)
	}
	for i := range 3 * maxFastHeaders {
		h := fmt.Sprintf(`{"alg":"HS256","n":%d}`, i)
		if !checkFast(t, v, signHS256(h, payload[0], fastSecret)) {
			t.Fatalf("header %s left to the full path", h)
		}
	}
	if n := len(*v.fast.headers.Load()); n != maxFastHeaders {
		t.Fatalf("%d headers remembered, want %d", n, maxFastHeaders)
	}
}

// FuzzFastHS256 signs arbitrary headers and claims with a configured secret
// (or with another one), so that the fuzzer explores the claims the fast
// path reads, and checks that it accepts only what the full path accepts,
// with the same username and expiry.
func FuzzFastHS256(f *testing.F) {
	took, others := fastCorpus()
	for _, p := range append(took, others...) {
		f.Add(lmsHeader, p, uint8(0))
	}
	f.Add(`{"alg":"HS256","kid":"x"}`, took[0], uint8(1))
	f.Add(lmsHeader, took[0], uint8(2))
	f.Add(`{"alg":"HS384"}`, took[0], uint8(0))
	vs := fastVerifiers(f)
	f.Fuzz(func(t *testing.T, header, payload string, key uint8) {
		secret := []string{fastSecret, fastSecret2, "not-the-secret"}[key%3]
		tok := signHS256(header, payload, secret)
		for _, v := range vs {
			checkFast(t, v, tok)
		}
	})
}

func BenchmarkFastHS256(b *testing.B) {
	v := fastVerifiers(b)[0]
	took, _ := fastCorpus()
	tok := signHS256(lmsHeader, took[0], fastSecret)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := v.fast.verify(tok, fastNow); !ok {
			b.Fatal("declined")
		}
	}
}

// TestTokenCacheBounded: the cache never holds more than its size; a set
// holds the last tokens put in it, its oldest dropped first; a token put
// twice takes one place; an expired token is dropped by get.
func TestTokenCacheBounded(t *testing.T) {
	for _, size := range []int{1, 3, 100, 16384} {
		c := newTokenCache(size, time.Minute)
		if n := len(c.sets) * c.ways; n > size || n < size-cacheWays {
			t.Fatalf("size %d: %d entries", size, n)
		}
		put := make(map[*cacheSet][]int) // the tokens put in each set, in order
		const tokens = 5000
		for i := range tokens {
			tok := fmt.Sprint("token-", i)
			k := c.key(tok)
			c.put(k, cachedToken{id: Identity{Username: tok}}, fastNow, fastNow.Add(time.Hour))
			c.put(k, cachedToken{id: Identity{Username: tok}}, fastNow, fastNow.Add(time.Hour))
			if i%7 == 0 { // some expire and are dropped by get
				c.put(k, cachedToken{id: Identity{Username: tok}}, fastNow, fastNow.Add(time.Second))
				if _, ok := c.get(k, fastNow.Add(time.Second)); ok {
					t.Fatalf("size %d: %s served past its expiry", size, tok)
				}
			}
			put[c.set(k)] = append(put[c.set(k)], i)
			if n := held(c); n > size {
				t.Fatalf("size %d: after %d inserts the cache holds %d entries", size, i+1, n)
			}
		}
		for i := range tokens {
			tok := fmt.Sprint("token-", i)
			got, ok := c.get(c.key(tok), fastNow)
			order := put[c.set(c.key(tok))]
			last := slices.Contains(order[max(0, len(order)-c.ways):], i)
			if want := last && i%7 != 0; ok != want || ok && got.id.Username != tok {
				t.Fatalf("size %d: %s cached %v (%q), want %v", size, tok, ok, got.id.Username, want)
			}
		}
	}
}

// TestTokenCacheConcurrent: goroutines putting and getting the same
// tokens (run with -race).
func TestTokenCacheConcurrent(t *testing.T) {
	c := newTokenCache(64, time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				tok := fmt.Sprint("token-", (i*(g+1))%300)
				k := c.key(tok)
				c.put(k, cachedToken{id: Identity{Username: tok}}, fastNow, fastNow.Add(time.Hour))
				if got, ok := c.get(k, fastNow); ok && got.id.Username != tok {
					t.Errorf("%s cached as %q", tok, got.id.Username)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// held is the number of entries c holds.
func held(c *tokenCache) int {
	n := 0
	for i := range c.sets {
		for _, e := range c.sets[i].entries {
			if !e.tok.until.IsZero() {
				n++
			}
		}
	}
	return n
}

// TestClaimBit: every claim's name is its bit, a key folding to one is -1,
// anything else 0.
func TestClaimBit(t *testing.T) {
	for i, name := range claimNames {
		if got := claimBit([]byte(name)); got != 1<<i {
			t.Errorf("claimBit(%q) = %d; want %d", name, got, 1<<i)
		}
		for j := range name {
			if name[j] < 'a' || name[j] > 'z' {
				continue
			}
			folded := name[:j] + strings.ToUpper(name[j:j+1]) + name[j+1:]
			if got := claimBit([]byte(folded)); got != -1 {
				t.Errorf("claimBit(%q) = %d; want -1", folded, got)
			}
		}
	}
	for _, key := range []string{"", "email", "EMAIL", "is", "issx", "Xiss", "preferred-username", "scopes", "ISS_"} {
		if got := claimBit([]byte(key)); got != 0 {
			t.Errorf("claimBit(%q) = %d; want 0", key, got)
		}
	}
}
