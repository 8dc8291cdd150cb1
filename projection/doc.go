// Package projection is the domain of enrollstatus: what an enrollment, a block
// completion and a course are, how an event changes a user's record, and how a
// user's enrollments status is computed at a given instant.
//
// It uses the standard library only and knows nothing of Kafka, bbolt or HTTP.
// It has no clock: every computation that depends on time takes `now`.
//
// # Convergence
//
// Events arrive at least once, out of order, and are replayed. Every merge in
// this package is therefore a join on a semilattice: commutative, associative
// and idempotent. Applying any permutation of any multiset of the same events
// gives the same record, byte for byte once encoded. The rules:
//
//   - Enrollment state per (user, course): the version with the greatest event
//     time wins; equal times are broken by comparing the versions' fields, so
//     that the choice never depends on arrival order.
//   - Last activity per (user, course): the maximum completion creation time.
//   - Course name and mobile availability: last writer wins by event time, ties
//     broken by value. Enrollment events carry the course's name as of their
//     time and take part in the same race.
//   - Username: last writer wins by event time; the user id is the identity.
//   - Retirement is absorbing: a retired user id drops every later event.
package projection
