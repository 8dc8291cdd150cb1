// Command enrollbench drives enrollstatus's benchmarks: query latency and
// throughput against the real HTTP handler and a bare echo baseline, ingest
// and rebuild rates against the raw fetch rate of the same readers, memory,
// plots, and the soak test. scripts/bench.sh and scripts/soak.sh run it;
// BENCHMARKS.md holds the results.
//
// Every load is bounded in count and time, targets loopback only, and
// stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// baseCtx ends on SIGINT or SIGTERM, so that a driver stops its load and its
// child processes before it exits.
var baseCtx = context.Background()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	baseCtx = ctx
	limitMemory()
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "enrollbench:", err)
		}
		os.Exit(1)
	}
}

var commands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"fixture":       cmdFixture,
	"query":         cmdQuery,
	"bare-server":   cmdBareServer,
	"ingest":        cmdIngest,
	"ingest-worker": cmdIngestWorker,
	"rebuild":       cmdRebuild,
	"soak":          cmdSoak,
	"plot":          cmdPlot,
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: enrollbench fixture|query|bare-server|ingest|ingest-worker|rebuild|soak|plot [flags]")
		return flag.ErrHelp
	}
	return commands[args[0]](args[1:], stdout, stderr)
}

// limitMemory gives the collector a soft limit of 85% of the machine's
// memory, unless GOMEMLIMIT sets one: a driver's in-process broker holds
// every message produced, and at Go's default the heap may grow to twice
// that before a collection (a 10M-message run reached 24 GB and was killed
// by the OOM killer). Workers and servers are other processes, not bound by
// it.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if gib := describeMachine().MemGiB; gib > 0 {
		debug.SetMemoryLimit(int64(gib * 0.85 * (1 << 30)))
	}
}
