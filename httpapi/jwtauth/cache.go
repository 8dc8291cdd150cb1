package jwtauth

import (
	"hash/maphash"
	"sync"
	"time"
)

// tokenCache remembers tokens verified recently, so that a mobile client
// sending the same token on every request skips the signature check and the
// claims decoding — most of a request's CPU — after its first request.
//
// An entry lasts until the token expires (plus the leeway) or until ttl
// passes, whichever comes first, so a secret or key removed from the
// configuration stops being honoured within ttl; a token verified against the
// JWK set is trusted only while its kid is still in the set. Keys are two independent
// 64-bit hashes of the token under random per-process seeds (tokens themselves
// are not kept in memory, and a collision cannot be aimed at).
//
// The entries are a fixed array, never more than the configured size, in
// sets of cacheWays that one of the key's hashes picks, each with its own
// lock: a full set drops its oldest entry for a new one. So a look-up or an
// insert touches one set, allocates nothing and waits on no other set's
// readers, where a single map under one lock cost a map delete and insert
// per token verified, and its lock was contended under load.
type tokenCache struct {
	seeds [2]maphash.Seed
	ttl   time.Duration
	ways  int
	sets  []cacheSet
}

// cacheWays is the number of entries of a set.
const cacheWays = 4

// cacheSet is one set of entries; next is the way the next new entry
// takes (the oldest one, once the set is full).
type cacheSet struct {
	mu      sync.Mutex
	next    int
	entries []cacheEntry
}

type cacheEntry struct {
	key [2]uint64
	tok cachedToken // zero until: empty
}

type cachedToken struct {
	id    Identity
	until time.Time
	kid   string // of a token verified against the JWK set; "" for HS256
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	ways := min(size, cacheWays)
	c := &tokenCache{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		ttl:   ttl,
		ways:  ways,
		sets:  make([]cacheSet, size/ways),
	}
	entries := make([]cacheEntry, len(c.sets)*ways)
	for i := range c.sets {
		c.sets[i].entries = entries[i*ways : (i+1)*ways : (i+1)*ways]
	}
	return c
}

// key is the cache key of a token; zero when the cache is off.
func (c *tokenCache) key(token string) [2]uint64 {
	if c == nil {
		return [2]uint64{}
	}
	return [2]uint64{maphash.String(c.seeds[0], token), maphash.String(c.seeds[1], token)}
}

// set is the set of the token whose key is k.
func (c *tokenCache) set(k [2]uint64) *cacheSet {
	return &c.sets[k[1]%uint64(len(c.sets))]
}

// get returns the entry of the token whose key is k, verified before and
// still valid at now.
func (c *tokenCache) get(k [2]uint64, now time.Time) (cachedToken, bool) {
	if c == nil {
		return cachedToken{}, false
	}
	s := c.set(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.entries {
		e := &s.entries[i]
		if e.key != k || e.tok.until.IsZero() {
			continue
		}
		if !now.Before(e.tok.until) {
			*e = cacheEntry{}
			return cachedToken{}, false
		}
		return e.tok, true
	}
	return cachedToken{}, false
}

// put remembers the token whose key is k, verified at now, valid until
// expires.
func (c *tokenCache) put(k [2]uint64, e cachedToken, now, expires time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.ttl)
	if expires.Before(until) {
		until = expires
	}
	if !now.Before(until) {
		return
	}
	e.until = until
	s := c.set(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.entries {
		if s.entries[i].key == k && !s.entries[i].tok.until.IsZero() {
			s.entries[i].tok = e // the same token again: its place
			return
		}
	}
	s.entries[s.next] = cacheEntry{key: k, tok: e}
	s.next = (s.next + 1) % c.ways
}
