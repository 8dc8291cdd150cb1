// Package memlimit sets the Go runtime's memory limit and collector pacing
// of a process that ingests: the one process-wide setting the service makes,
// shared by the command and the benchmark drivers that stand in for it.
package memlimit

import "runtime/debug"

// DefaultMiB is the Go runtime's soft memory limit of a process
// that ingests (serve and rebuild; not demo, whose embedded broker keeps its log in the same process). Its live heap stays well below (a
// commit holds the pages it dirties, bounded by the consumer's
// CatchUpMaxWrites; queries allocate little), but the garbage collector's
// default pacing lets the heap grow to twice the live size between cycles;
// the limit makes it collect sooner instead, keeping the resident memory
// outside bbolt's mmap under 256 MiB whatever the projection's size.
const DefaultMiB = 192

// GCPercent is the garbage collector's target percentage while a
// memory limit is set: the limit bounds the heap, so the collector need not
// also run each time the heap doubles (ingest and rebuild run ~8% faster,
// within the same limit).
const GCPercent = 300

// Set sets the runtime's soft memory limit to mib MiB and, unless
// GOGC is set, the collector's percentage to GCPercent; it returns
// the limit in force, in bytes (math.MaxInt64: none). The GOMEMLIMIT
// environment variable, which the runtime applied at start, wins; mib 0
// leaves the limit and the collector alone.
func Set(mib int, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" || mib <= 0 {
		return debug.SetMemoryLimit(-1) // read, do not change
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	return int64(mib) << 20
}
