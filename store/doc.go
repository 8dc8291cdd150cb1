// Package store keeps the projection in one bbolt file.
//
// Layout (buckets): users (user id -> record with every course of the user),
// usernames (Django-lower-cased username -> the id of the user holding it,
// then those of any other record carrying it; see settleName), courses (course id ->
// name and mobile availability with their event times), member_blocks
// (course id, NUL, block of 4096 user ids -> the members' ids in the block:
// who has an entry for a course, so a rename reaches every record; see
// codec.go), retired (user ids whose later events are dropped), offsets (topic,
// NUL, partition -> next offset to read) and meta (format version, freshness).
//
// # Exactly-once effect
//
// Apply writes a batch's effects and the offsets it was read up to in one
// write transaction. After a crash at any instant the file holds either the
// whole batch and its offsets or neither, and consumers resume from the stored
// offsets, so nothing is lost and nothing is applied twice. The merges of the
// projection package are idempotent and order-independent as well, so even a
// replay from older offsets converges to the same file.
//
// # Reads
//
// A status query is an index lookup and one record decode, whatever the
// number of users or events. Course metadata is copied into each member's
// record when it changes (fan-out on write), so a query never joins. The
// queries between two writes share one read transaction (view.go, as etcd's
// backend shares one), with pooled cursors: a query opens no transaction
// and allocates nothing in bbolt. The view is closed before every write
// transaction begins, so that a commit that remaps the growing file never
// waits for it. StatusFunc lends the answer, decoded in place (its strings
// are views of the file's pages), to a function that encodes it while the
// transaction is open; Status copies it out.
//
// # Bulk loads
//
// A rebuild replays the whole history into an empty file. Apply, batch after
// batch, would rewrite a page of the users bucket for nearly every user a
// batch touches; a Loader instead sorts the events by user in bounded memory
// (spilling sorted runs to unlinked temporary files), then writes each record
// once, in key order, and the username and member indexes after them, also
// in key order. The merges being order-independent, the file holds what
// Apply would have built from the same events. A new replica's first
// catch-up is such a load too (internal/pipeline). A merge loader
// (NewMergeLoader) does the same into a new file for a projection that
// holds data and is far behind: it reads the old file's records in key order
// alongside the sorted backlog and writes each once, so a replica back from
// a long outage catches up at a load's speed.
//
// # Caveats
//
// One goroutine writes. NoSync only for a rebuild's file, until Rename makes
// it the live one. The file never shrinks by itself; Compact copies it into a
// smaller file offline.
package store
