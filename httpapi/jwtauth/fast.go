package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/enrollstatus/enrollstatus/internal/jsonscan"
)

// The fast path verifies an HS256 token as the LMS issues it without
// golang-jwt's reflection-based decoding: the header is recognised by its
// base64 segment (the LMS's never changes), the signature is checked with a
// pooled HMAC-SHA256 already keyed with each secret, and only the claims
// the service reads are picked out of the verified payload by a small
// scanner. It only ever accepts: whenever something is unusual (another
// algorithm, a claim of an unexpected type, an escape in a string, a
// duplicate or case-folded key, a fraction in a time, a failed check...) it
// declines and the token goes to the full path, which accepts or refuses
// it with the exact detail. So it accepts a subset of what the full path
// accepts, with the same identity and expiry (FuzzFastHS256 checks this).

// fastHS256 is the Verifier's fast path; nil when no secret is configured.
type fastHS256 struct {
	secrets   [][]byte
	issuers   []string
	audiences []string
	leeway    time.Duration

	macs sync.Pool // *fastScratch

	// headers are header segments known to decode to a JSON object whose
	// "alg" is "HS256", as golang-jwt decodes them. Copy on write, bounded.
	headers   atomic.Pointer[map[string]struct{}]
	headersMu sync.Mutex
}

// maxFastHeaders bounds the remembered header segments: the LMS uses one
// (or a handful across key rotations); a client cannot grow the set past
// this.
const maxFastHeaders = 16

// Bounds past which the fast path declines rather than decode.
const (
	maxFastHeader  = 512     // header segment, base64
	maxFastPayload = 8 << 10 // claims segment, base64
	maxFastDepth   = 32      // nesting of claims the service does not read
)

// fastScratch is one goroutine's HMACs (one per secret) and buffers.
type fastScratch struct {
	macs    []hash.Hash
	sum     []byte
	sig     [64]byte
	payload []byte
}

func newFastHS256(secrets [][]byte, issuers, audiences []string, leeway time.Duration) *fastHS256 {
	if len(secrets) == 0 {
		return nil
	}
	f := &fastHS256{secrets: secrets, issuers: issuers, audiences: audiences, leeway: leeway}
	f.macs.New = func() any {
		s := &fastScratch{sum: make([]byte, 0, sha256.Size), payload: make([]byte, 0, 1024)}
		for _, k := range f.secrets {
			s.macs = append(s.macs, hmac.New(sha256.New, k))
		}
		return s
	}
	empty := map[string]struct{}{}
	f.headers.Store(&empty)
	return f
}

// bytesOf is a read-only view of s, for APIs that take a []byte and do not
// keep or modify it.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// verify returns the identity and expiry of token when the fast path can
// vouch for it at now; ok false means "ask the full path", never "refused".
func (f *fastHS256) verify(token string, now time.Time) (id Identity, exp time.Time, ok bool) {
	if f == nil {
		return Identity{}, time.Time{}, false
	}
	// Split as golang-jwt does: exactly two dots.
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return Identity{}, time.Time{}, false
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return Identity{}, time.Time{}, false
	}
	dot2 += dot1 + 1
	header, payload, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	if strings.IndexByte(sig, '.') >= 0 || len(payload) > maxFastPayload ||
		len(sig) > base64.RawURLEncoding.EncodedLen(len(fastScratch{}.sig)) {
		return Identity{}, time.Time{}, false
	}
	hs256, known := f.hs256Header(header)
	if !hs256 {
		return Identity{}, time.Time{}, false
	}

	s := f.macs.Get().(*fastScratch)
	defer f.macs.Put(s)
	n, err := base64.RawURLEncoding.Decode(s.sig[:], bytesOf(sig))
	if err != nil {
		return Identity{}, time.Time{}, false
	}
	signed := bytesOf(token[:dot2])
	verified := false
	for _, m := range s.macs {
		m.Reset()
		m.Write(signed)
		s.sum = m.Sum(s.sum[:0])
		if hmac.Equal(s.sig[:n], s.sum) {
			verified = true
			break
		}
	}
	if !verified {
		return Identity{}, time.Time{}, false
	}

	// The signature holds: the payload is the issuer's.
	if need := base64.RawURLEncoding.DecodedLen(len(payload)); cap(s.payload) < need {
		s.payload = make([]byte, need)
	}
	n, err = base64.RawURLEncoding.Decode(s.payload[:cap(s.payload)], bytesOf(payload))
	if err != nil {
		return Identity{}, time.Time{}, false
	}
	var c fastClaims
	if !c.scan(s.payload[:n]) {
		return Identity{}, time.Time{}, false
	}
	id, exp, ok = f.check(&c, now)
	if ok && !known {
		// Remembered only once a token bearing it verified, so that made-up
		// tokens cannot fill the set.
		f.rememberHeader(header)
	}
	return id, exp, ok
}

// hs256Header reports whether the header segment decodes, as golang-jwt
// decodes it, to a JSON object whose "alg" is "HS256", and whether it is
// one of the remembered ones.
func (f *fastHS256) hs256Header(seg string) (hs256, known bool) {
	if _, ok := (*f.headers.Load())[seg]; ok {
		return true, true
	}
	if len(seg) > maxFastHeader {
		return false, false
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false, false
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		return false, false
	}
	alg, ok := h["alg"].(string)
	return ok && alg == "HS256", false
}

// rememberHeader adds an HS256 header segment to the remembered ones,
// while there are fewer than maxFastHeaders.
func (f *fastHS256) rememberHeader(seg string) {
	f.headersMu.Lock()
	defer f.headersMu.Unlock()
	old := *f.headers.Load()
	if _, ok := old[seg]; ok || len(old) >= maxFastHeaders {
		return
	}
	m := make(map[string]struct{}, len(old)+1)
	for k := range old {
		m[k] = struct{}{}
	}
	m[strings.Clone(seg)] = struct{}{}
	f.headers.Store(&m)
}

// check applies the full path's checks, in its terms (golang-jwt's
// Validator with WithExpirationRequired, WithIssuedAt, WithLeeway and
// WithAudience, then the Verifier's own), to claims the scanner read.
func (f *fastHS256) check(c *fastClaims, now time.Time) (Identity, time.Time, bool) {
	if !c.has(claimExp) {
		return Identity{}, time.Time{}, false
	}
	exp := time.Unix(c.exp, 0)
	if !now.Before(exp.Add(f.leeway)) {
		return Identity{}, time.Time{}, false
	}
	if c.has(claimNbf) && now.Before(time.Unix(c.nbf, 0).Add(-f.leeway)) {
		return Identity{}, time.Time{}, false
	}
	if c.has(claimIat) && now.Before(time.Unix(c.iat, 0).Add(-f.leeway)) {
		return Identity{}, time.Time{}, false
	}
	if len(f.audiences) > 0 {
		if c.audN == 0 || c.audN == 1 && c.audFirstEmpty {
			return Identity{}, time.Time{}, false
		}
		if !c.audMatch(f.audiences) {
			return Identity{}, time.Time{}, false
		}
	}
	if len(f.issuers) > 0 {
		found := false
		for _, iss := range f.issuers {
			if string(c.iss) == iss {
				found = true
				break
			}
		}
		if !found {
			return Identity{}, time.Time{}, false
		}
	}
	if c.has(claimVersion) && !supportedVersion(unsafe.String(unsafe.SliceData(c.version), len(c.version))) {
		return Identity{}, time.Time{}, false
	}
	user := c.preferredUsername
	if len(user) == 0 {
		user = c.username
	}
	if len(user) == 0 {
		return Identity{}, time.Time{}, false
	}
	return Identity{Username: string(user), Staff: c.administrator}, exp, true
}

// The claims the claims struct of the full path has, by bit.
const (
	claimIss = 1 << iota
	claimSub
	claimAud
	claimExp
	claimNbf
	claimIat
	claimJti
	claimPreferredUsername
	claimUsername
	claimVersion
	claimAdministrator
)

// claimNames are the JSON names of the full path's claims struct (its
// fields and RegisteredClaims'), in bit order. encoding/json matches them
// case-insensitively; the scanner declines any key that folds to one of
// them without being it.
var claimNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "preferred_username", "username", "version",
	"administrator"}

// fastClaims are the claims the scanner read. Strings are views of the
// decoded payload: they hold no escape and are valid UTF-8, so they are
// what encoding/json would decode.
type fastClaims struct {
	seen                   int
	exp, nbf, iat          int64
	iss, preferredUsername []byte
	username, version      []byte
	aud                    [4][]byte // the first entries (see audMatch)
	audN                   int       // entries, kept or not
	audFirstEmpty          bool
	administrator          bool // the literal true
}

func (c *fastClaims) has(bit int) bool { return c.seen&bit != 0 }

// audMatch reports whether the token's audience holds one of want.
func (c *fastClaims) audMatch(want []string) bool {
	for _, a := range c.aud[:min(c.audN, len(c.aud))] {
		for _, w := range want {
			if string(a) == w {
				return true
			}
		}
	}
	// With more entries than kept, one of the others might: let the full
	// path decide.
	return false
}

// scan reads a JSON object of claims. It returns false for anything it
// does not read exactly as encoding/json would into the full path's claims
// struct, and for anything that is not valid JSON.
func (c *fastClaims) scan(b []byte) bool {
	s := scanner{b: b}
	s.space()
	if !s.byte('{') {
		return false
	}
	s.space()
	if !s.byte('}') {
		for {
			key, ok := s.plainString(false)
			if !ok {
				return false
			}
			s.space()
			if !s.byte(':') {
				return false
			}
			s.space()
			bit := claimBit(key)
			if bit < 0 || c.seen&bit != 0 {
				return false // folds to a claim, or a duplicate claim
			}
			c.seen |= bit
			if !c.value(&s, bit) {
				return false
			}
			s.space()
			if s.byte(',') {
				s.space()
				continue
			}
			if s.byte('}') {
				break
			}
			return false
		}
	}
	s.space()
	return s.i == len(s.b)
}

// claimBit is key's claim bit; 0 for a key the claims struct does not have
// (its value is skipped), -1 for one that is not exactly a claim's name but
// that encoding/json would match to one case-insensitively.
func claimBit(key []byte) int {
	switch string(key) { // claimNames, in order
	case "iss":
		return claimIss
	case "sub":
		return claimSub
	case "aud":
		return claimAud
	case "exp":
		return claimExp
	case "nbf":
		return claimNbf
	case "iat":
		return claimIat
	case "jti":
		return claimJti
	case "preferred_username":
		return claimPreferredUsername
	case "username":
		return claimUsername
	case "version":
		return claimVersion
	case "administrator":
		return claimAdministrator
	}
	// The names are lower case: only a key with an upper-case letter can
	// fold to one without being it.
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			for _, name := range claimNames {
				if len(key) == len(name) && asciiEqualFold(key, name) {
					return -1
				}
			}
			return 0
		}
	}
	return 0
}

// asciiEqualFold compares an ASCII key (plainString(false) guarantees it)
// to a lower-case name.
func asciiEqualFold(key []byte, name string) bool {
	for i := range key {
		k := key[i]
		if 'A' <= k && k <= 'Z' {
			k += 'a' - 'A'
		}
		if k != name[i] {
			return false
		}
	}
	return true
}

// value reads the value of the claim bit (0: a key the struct does not have).
func (c *fastClaims) value(s *scanner, bit int) bool {
	switch bit {
	case 0:
		return s.skip()
	case claimSub, claimJti:
		// Read by encoding/json, never used: any JSON string does.
		return s.peek() == '"' && s.skip()
	case claimExp, claimNbf, claimIat:
		n, ok := s.seconds()
		switch bit {
		case claimExp:
			c.exp = n
		case claimNbf:
			c.nbf = n
		default:
			c.iat = n
		}
		return ok
	case claimAud:
		return c.audience(s)
	case claimAdministrator:
		// A json.RawMessage in the full path: any value, staff only if
		// it is the literal true.
		start := s.i
		ok := s.skip()
		c.administrator = ok && string(s.b[start:s.i]) == "true"
		return ok
	}
	v, ok := s.plainString(true)
	switch bit {
	case claimIss:
		c.iss = v
	case claimPreferredUsername:
		c.preferredUsername = v
	case claimUsername:
		c.username = v
	case claimVersion:
		c.version = v
	}
	return ok
}

// audience reads aud: a string, or a list of strings.
func (c *fastClaims) audience(s *scanner) bool {
	add := func(v []byte) {
		if c.audN == 0 {
			c.audFirstEmpty = len(v) == 0
		}
		if c.audN < len(c.aud) {
			c.aud[c.audN] = v
		}
		c.audN++
	}
	if !s.byte('[') {
		v, ok := s.plainString(true)
		add(v)
		return ok
	}
	s.space()
	if s.byte(']') {
		return true
	}
	for {
		v, ok := s.plainString(true)
		if !ok {
			return false
		}
		add(v)
		s.space()
		if s.byte(',') {
			s.space()
			continue
		}
		return s.byte(']')
	}
}

// scanner reads JSON from b at i.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// byte consumes c if it is next.
func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// space skips JSON whitespace.
func (s *scanner) space() { s.i = jsonscan.SkipSpace(s.b, s.i) }

// plainString reads a string without escapes: with utf8, one holding valid
// UTF-8 (what encoding/json decodes to the same bytes); without, one of
// printable ASCII only (a key).
func (s *scanner) plainString(utf bool) ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	ascii := true
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && (!utf || !utf8.Valid(v)) {
				return nil, false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// seconds reads a NumericDate the fast path takes: a non-negative integer
// below 10^15, which golang-jwt's float64 conversion keeps exact, so that
// its time is time.Unix(n, 0) as here.
func (s *scanner) seconds() (int64, bool) {
	start := s.i
	var n int64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
		if s.i-start > 15 {
			return 0, false
		}
	}
	digits := s.i - start
	if digits == 0 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if c := s.peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, false
	}
	return n, true
}

// skip validates one JSON value, of any type, nested at most
// maxFastDepth deep, and moves past it.
func (s *scanner) skip() bool {
	end, ok := jsonscan.Skip(s.b, s.i, maxFastDepth)
	s.i = end
	return ok
}
