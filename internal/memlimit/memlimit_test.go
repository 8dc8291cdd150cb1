package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestSet(t *testing.T) {
	before, gc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	defer debug.SetMemoryLimit(before)
	defer debug.SetGCPercent(gc)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if got := Set(100, getenv); got != 100<<20 || debug.SetMemoryLimit(-1) != 100<<20 {
		t.Fatalf("limit %d, runtime %d, want %d", got, debug.SetMemoryLimit(-1), 100<<20)
	}
	if p := debug.SetGCPercent(100); p != GCPercent {
		t.Fatalf("GC percent %d with a limit, want %d", p, GCPercent)
	}
	env["GOGC"] = "50" // the runtime applied it; it wins
	debug.SetGCPercent(50)
	Set(100, getenv)
	if p := debug.SetGCPercent(100); p != 50 {
		t.Fatalf("with GOGC set the GC percent changed to %d", p)
	}
	delete(env, "GOGC")
	env["GOMEMLIMIT"] = "1GiB" // the runtime applied it; it wins
	if got := Set(50, getenv); got != 100<<20 {
		t.Fatalf("with GOMEMLIMIT set the limit changed to %d", got)
	}
	delete(env, "GOMEMLIMIT")
	debug.SetMemoryLimit(math.MaxInt64)
	if got := Set(0, getenv); got != math.MaxInt64 {
		t.Fatalf("mib 0 set a limit: %d", got)
	}
}
