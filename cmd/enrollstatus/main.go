// Command enrollstatus answers the Open edX mobile apps' enrollments_status
// question from a projection of Kafka events.
//
//	enrollstatus demo      everything in one process: an embedded Kafka-protocol
//	                       broker, synthetic Open edX traffic, the pipeline, the API
//	enrollstatus serve     consume a Kafka cluster and serve the API
//	enrollstatus inspect   print a user's record, offsets and store statistics
//	enrollstatus diff      compare two projection files
//	enrollstatus compact   copy a projection into a smaller file (offline)
//	enrollstatus token     print a signed JWT for a username (for trying it out)
//	enrollstatus rebuild   replay the topics into a new projection and swap it in
//	enrollstatus snapshot  download a running instance's projection
//	enrollstatus restore   start a data directory from a snapshot
//
// Every flag can also be set with an ENROLLSTATUS_* environment variable;
// `enrollstatus <command> --help` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "enrollstatus:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line.
type usageError struct{ error }

const usage = `enrollstatus answers GET /api/mobile/{v}/users/{username}/enrollments_status/
from a projection of Open edX events consumed from Kafka.

Usage: enrollstatus <command> [flags]

Commands:
  demo      run everything in one process: an embedded Kafka-protocol broker on
            loopback, synthetic Open edX traffic, the pipeline and the HTTP API
  serve     consume a Kafka cluster (--brokers) and serve the HTTP API
  inspect   print a user's record, the stored offsets and store statistics
  diff      compare the projections of two data files and say where they differ
  compact   copy a stopped service's projection into a smaller file
  token     print a signed JWT for a username, to try the API
  rebuild   replay the topics into a new projection and swap it in (offline, or
            online on a running instance with --url)
  snapshot  download a consistent copy of a running instance's projection
  restore   put a snapshot (file or URL) into a data directory, for a new replica
  probe     exit 0 when a URL answers 200 (a container health check)

Run 'enrollstatus <command> --help' for a command's flags. Every flag can be
set with an environment variable: --data-dir is ENROLLSTATUS_DATA_DIR.
`

// run is the whole program, with its environment passed in.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "inspect":
		return runInspect(ctx, rest, getenv, stdout, stderr)
	case "diff":
		return runDiff(ctx, rest, getenv, stdout, stderr)
	case "compact":
		return runCompact(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, rest, getenv, stdout, stderr)
	case "probe":
		return runProbe(ctx, rest, getenv, stdout, stderr)
	case "rebuild":
		return runRebuild(ctx, rest, getenv, stdout, stderr)
	case "snapshot":
		return runSnapshot(ctx, rest, getenv, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}
