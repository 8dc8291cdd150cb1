// Package httpapi is the HTTP face of enrollstatus: the Open edX mobile
// endpoint that the LMS's UserEnrollmentsStatus view answers, served from the
// projection, plus health, metrics and a group for admin endpoints.
//
// It reads through two small interfaces, Statuses and Health, and knows
// nothing of Kafka or bbolt. Routes are declared in one function
// (Server.routes), client faults are *Error values, and one error handler
// turns errors into statuses and JSON bodies.
//
// # Routes
//
//	GET  /api/mobile/{version}/users/{username}/enrollments_status/   the LMS's view
//	GET  /healthz    200 {"status":"ok"} while the process serves HTTP
//	GET  /readyz     200 when Health.Ready() is nil, else 503 {"detail": why}
//	GET  /metrics    Prometheus text from Deps.Gatherer
//	*    /admin/...  routes others mount on Server.Admin, behind RequireAdmin
//
// # The view, as the LMS answers it
//
// A client pointed at this service instead of the LMS must see no
// difference, so the view follows Django and Django REST framework:
//
//   - The path is matched percent-decoded, like Django's path_info:
//     "a%20b" is the username "a b", and "%2F" is a "/" that no username can
//     hold (404), never a way out of the route.
//   - {version} is v4, v3, v2, v1 or v0.5; {username} matches the LMS's
//     [\w .@_+-]+ (projection.ValidUsername). The pattern has no $: anything
//     after "enrollments_status/" reaches the view. The query string is
//     ignored.
//   - ".../enrollments_status" without the slash answers 301 to the path
//     with it, query kept, for any method and before authentication
//     (Django's APPEND_SLASH); the Location is re-escaped as Django does.
//   - Checks run in DRF's order: route (404), content negotiation (406:
//     the LMS renders JSON only, so an Accept header that excludes it is
//     refused, as DRF's DefaultContentNegotiation does; acceptsJSON),
//     authentication (401), permission (403), method (405). So an
//     unauthenticated POST is 401 and an authenticated POST for oneself 405.
//   - Authentication reads the Authorization header only: "JWT <token>" or
//     "Bearer <token>", scheme in any case, exactly one space. Anything else
//     is "Authentication credentials were not provided."; a bad token is 401
//     with a detail naming the failed check (see jwtauth). 401s carry
//     WWW-Authenticate: JWT realm="api". Tokens in the query string or in
//     cookies are never read.
//   - Permission: the token's username and the URL's are equal after
//     Python's str.lower() (projection.LowerUsername: "İ" lowers to "i̇",
//     a final "Σ" to "ς"). There is no staff bypass. A user the service has
//     never heard of is 403 to others and 200 [] to themselves, so nothing
//     leaks whether a user exists.
//   - The mobile filter does not apply to global staff: a token whose
//     administrator claim is true (the LMS's is_staff, which
//     is_mobile_available_for_user lets see every course). Course staff
//     and beta testers, whom the LMS exempts too, are filtered: no event
//     says who they are.
//   - GET answers 200 with the list; HEAD the same without the body (the
//     Content-Length is the GET body's); OPTIONS 200 with DRF's metadata;
//     other methods 405 {"detail":"Method \"POST\" not allowed."}. Every
//     answer of the view carries Allow: GET, HEAD, OPTIONS and Vary: Accept.
//   - The body is DRF's JSONRenderer output: compact, non-ASCII as UTF-8,
//     < > & unescaped, U+2028/U+2029 escaped, course_name null when unknown:
//     [{"course_id":"...","course_name":"...","recently_active":true}].
//
// Every other answer is JSON too: errors are {"detail": "..."}, the 404 of
// an unknown path is {"detail":"Not found."} (Django's would be HTML), and a
// server fault is a logged 500 {"detail":"A server error occurred."}.
//
// # Freshness
//
// Every status answer carries HeaderLastEventTime, HeaderCommittedAt
// (RFC 3339, nanoseconds, UTC; absent while zero), HeaderLag (messages) and
// HeaderStale ("true" when the consumer is disconnected or lags more than
// Config.StaleLag), so a client can tell a stale answer from an empty one.
//
// # Metrics
//
// MetricRequests (counter) and MetricDuration (histogram, seconds), both
// labelled route, method and code. route is a template such as
// "/api/mobile/{version}/users/{username}/enrollments_status/", or
// "unmatched": never a username or a path a client made up. Unusual
// methods are counted as OTHER.
//
// # Hardening
//
// NewHTTPServer sets read-header, read, write and idle timeouts and a header
// size limit. Request targets over Config.MaxURLBytes answer 414 and
// headers over Config.MaxHeaderBytes 431, in JSON. Some requests never reach
// a handler: net/http itself refuses what it cannot parse (400), headers
// over twice Config.MaxHeaderBytes (431), an unknown transfer coding (501)
// and an unknown HTTP version (505), in plain text; Serve's listener
// (JSONErrorListener) turns those answers into JSON, the 5xx into 400. A
// panic in a handler is recovered, logged and answered 500. Tokens are
// never logged. A refused token is answered as the LMS answers it:
// "Invalid token.", or the LMS's own words for a token without a username;
// which check failed is logged at debug.
//
// # Where it differs from the LMS, on purpose
//
//   - A token without iat is accepted (the LMS's decoder requires it; every
//     token the LMS issues has one).
//   - "v0.5" is literal; the LMS's regex v(4|3|2|1|0.5) lets any character
//     stand for the dot.
//   - Bearer carries a JWT here; the LMS reads opaque OAuth2 access tokens
//     there, and also accepts its session cookie, which this service cannot.
//
// # Lifecycle
//
//	srv, err := httpapi.New(cfg, deps)  // fetches the JWK set URL, if any
//	srv.Admin().POST("/rebuild", h)      // before serving
//	go srv.Serve(ln)                     // or ListenAndServe; nil after Shutdown
//	srv.Shutdown(ctx)                    // drains requests, stops the JWK refresh
package httpapi
