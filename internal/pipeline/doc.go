// Package pipeline joins the consumer to the store — the one place that knows
// both, so that neither imports the other — and runs the serving projection:
// the live consumer feeding the current store, queries reading it, and the
// operations that replace it while queries go on (rebuild by replay, online
// compaction, a catch-up by merge when far behind) or copy it (snapshots).
//
// A swap renames the new file over the old one (atomic on POSIX), then
// switches readers under a lock that queries hold for the length of one read
// transaction, so no query ever meets a closed store; the live consumer is
// paused around the switch so that nothing it applied is lost.
package pipeline
