// Package jwtauth verifies the JWTs the Open edX LMS issues, as its
// JwtAuthentication (edx-drf-extensions) does, and returns whom they were
// issued for: the username, and whether the user is global staff (the
// administrator claim).
//
// Keys: HS256 tokens are checked against one or more shared secrets
// (rotation: any of them verifies); RS256/RS384/RS512 and ES256/ES384/ES512
// tokens against the public keys of a JWK set given inline, as a file, or
// by URL (keyfunc/jwkset: fetched at start, refreshed periodically, and on a
// kid no key has, at most once per interval; a token with a made-up kid
// inside the interval is refused at once, without a fetch). Each algorithm
// is bound to its kind of key: the secrets never verify an RS or ES token,
// a JWK set's keys never verify an HS256 token (a shared-secret key in an
// inline or file set is a configuration error; one fetched from the URL is
// ignored), and "none" is never accepted.
//
// Claims: exp is required; nbf and iat, when present, must not be in the
// future; all three with Config.Leeway. iss must be one of Config.Issuers
// and aud (a string or a list) must hold one of Config.Audiences, when they
// are configured. A "version" claim, when present, must have major version
// 1, as the LMS's JWT_SUPPORTED_VERSION (1.2.0) demands. The user is
// preferred_username, or username when it is absent (old LMS tokens); a
// token with neither is refused.
//
// Cost: a verified token is remembered (Config.CacheSize, CacheTTL; never
// past its exp), and an HS256 token that is not goes through a fast path
// (fast.go: pooled pre-keyed HMACs, no reflection) that accepts only tokens
// the full golang-jwt path accepts, with the same identity (username, staff) and expiry, and
// leaves anything unusual, and every refusal, to the full path.
//
// Every refusal is an *Error whose Detail names the failed check, for logs,
// and never contains the token or anything about the keys; ClientDetail is
// what the LMS answers ("Invalid token." to all but a token without a
// username).
//
// Caveats, against the LMS: the LMS requires iat and checks exp without
// leeway while verifying the signature; here iat is optional and the leeway
// applies to exp too. The LMS accepts RS256 and RS512 (its default signing
// algorithm) and HS256; the others accepted here are harmless extensions.
//
// The JWK set's refresh goroutine belongs to jwkset; it ends when Close
// cancels its context, but cannot be waited for.
package jwtauth
