package pipeline

import (
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	before, gc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	defer debug.SetMemoryLimit(before)
	defer debug.SetGCPercent(gc)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if got := SetMemoryLimit(100, getenv); got != 100<<20 || debug.SetMemoryLimit(-1) != 100<<20 {
		t.Fatalf("limit %d, runtime %d, want %d", got, debug.SetMemoryLimit(-1), 100<<20)
	}
	if p := debug.SetGCPercent(100); p != GCPercentWithLimit {
		t.Fatalf("GC percent %d with a limit, want %d", p, GCPercentWithLimit)
	}
	env["GOGC"] = "50" // the runtime applied it; it wins
	debug.SetGCPercent(50)
	SetMemoryLimit(100, getenv)
	if p := debug.SetGCPercent(100); p != 50 {
		t.Fatalf("with GOGC set the GC percent changed to %d", p)
	}
	delete(env, "GOGC")
	env["GOMEMLIMIT"] = "1GiB" // the runtime applied it; it wins
	if got := SetMemoryLimit(50, getenv); got != 100<<20 {
		t.Fatalf("with GOMEMLIMIT set the limit changed to %d", got)
	}
	delete(env, "GOMEMLIMIT")
	debug.SetMemoryLimit(noLimit)
	if got := SetMemoryLimit(0, getenv); got != noLimit {
		t.Fatalf("mib 0 set a limit: %d", got)
	}
}
