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
// are not kept in memory, and a collision cannot be aimed at); the number of
// entries is bounded: a full cache drops its oldest entry per insert.
type tokenCache struct {
	seeds [2]maphash.Seed
	ttl   time.Duration
	max   int

	mu      sync.Mutex
	entries map[[2]uint64]cachedToken
	// order is the keys of the last max inserts, a ring whose next slot
	// holds the oldest: overwriting a slot drops its key from entries, so
	// entries only ever holds keys of the last max inserts.
	order [][2]uint64
	next  int
}

type cachedToken struct {
	username string
	until    time.Time
	kid      string // of a token verified against the JWK set; "" for HS256
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	return &tokenCache{
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		ttl:     ttl,
		max:     size,
		entries: make(map[[2]uint64]cachedToken, min(size, 1024)),
	}
}

// key is the cache key of a token; zero when the cache is off.
func (c *tokenCache) key(token string) [2]uint64 {
	if c == nil {
		return [2]uint64{}
	}
	return [2]uint64{maphash.String(c.seeds[0], token), maphash.String(c.seeds[1], token)}
}

// get returns the entry of the token whose key is k, verified before and
// still valid at now.
func (c *tokenCache) get(k [2]uint64, now time.Time) (cachedToken, bool) {
	if c == nil {
		return cachedToken{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return cachedToken{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, k)
		return cachedToken{}, false
	}
	return e, true
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok {
		if len(c.order) < c.max {
			c.order = append(c.order, k)
		} else {
			delete(c.entries, c.order[c.next])
			c.order[c.next] = k
			c.next = (c.next + 1) % c.max
		}
	}
	c.entries[k] = e
}
