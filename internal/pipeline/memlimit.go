package pipeline

import (
	"math"
	"runtime/debug"
)

// DefaultMemoryLimitMiB is the Go runtime's soft memory limit of a process
// that ingests (serve, demo, rebuild). Its live heap stays well below (a
// commit holds the pages it dirties, bounded by the consumer's
// CatchUpMaxWrites; queries allocate little), but the garbage collector's
// default pacing lets the heap grow to twice the live size between cycles;
// the limit makes it collect sooner instead, keeping the resident memory
// outside bbolt's mmap under 256 MiB whatever the projection's size.
const DefaultMemoryLimitMiB = 192

// GCPercentWithLimit is the garbage collector's target percentage while a
// memory limit is set: the limit bounds the heap, so the collector need not
// also run each time the heap doubles (ingest and rebuild run ~8% faster,
// within the same limit).
const GCPercentWithLimit = 300

// SetMemoryLimit sets the runtime's soft memory limit to mib MiB and, unless
// GOGC is set, the collector's percentage to GCPercentWithLimit; it returns
// the limit in force, in bytes (math.MaxInt64: none). The GOMEMLIMIT
// environment variable, which the runtime applied at start, wins; mib 0
// leaves the limit and the collector alone.
func SetMemoryLimit(mib int, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" || mib <= 0 {
		return debug.SetMemoryLimit(-1) // read, do not change
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercentWithLimit)
	}
	return int64(mib) << 20
}

// noLimit is what debug.SetMemoryLimit reports when no limit is set.
const noLimit = math.MaxInt64
