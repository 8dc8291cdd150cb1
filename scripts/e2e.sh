#!/usr/bin/env bash
# The end-to-end suite (e2e/e2e_test.go) against a real Apache Kafka broker fed by the real
# Open edX producer: installs what it needs (kcat, the Kafka jars, the producer's venv),
# builds the service, runs
#
#   ENROLLSTATUS_E2E=1 go test ./e2e/ -v -count=1 -timeout 30m
#
# and, whatever happens, stops everything the run started: the broker (by its pid file),
# the services, the schema registry and producers (by the pid files the suite writes,
# checked to be this run's processes). Loopback only.
#
#   scripts/e2e.sh [go test flags, e.g. -run TestEndToEnd]
#
# Environment: E2E_CRASHES (20), E2E_BROKER_FAULTS (2), E2E_USERS (3000), E2E_COURSES (60),
# E2E_SEED, E2E_KEEP=1 (keep the run's dir: logs, data, history; kept anyway on failure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/enrollstatus-e2e.XXXXXX")"
log() { printf 'e2e.sh: %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  # children the suite left behind if the test binary died without its cleanups: only
  # processes whose command line names this run's dir (no recycled pid is ever hit)
  local f pid
  for f in "$WORK"/pids/*.pid; do
    [[ -e "$f" ]] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$WORK"; then
      log "killing leftover process group $pid ($(basename "$f"))"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ -d "$WORK/kafka" ]]; then
    scripts/kafka.sh stop --dir "$WORK/kafka" >/dev/null 2>&1 || true
  fi
  if [[ $rc == 0 && "${E2E_KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
  else
    log "the run's files (logs/, data/, history/, kafka/) are in $WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
scripts/install-tools.sh
scripts/kafka.sh install
PY="$(e2e/producer/setup.sh)"
go build -o "$WORK/enrollstatus" ./cmd/enrollstatus
log "ready in $((SECONDS - t0))s; running the suite (work dir $WORK)"

E2E_WORKDIR="$WORK" E2E_PY="$PY" E2E_BIN="$WORK/enrollstatus" ENROLLSTATUS_E2E=1 \
  go test ./e2e/ -v -count=1 -timeout 30m "$@"
