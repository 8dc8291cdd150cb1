#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time each: scripts/fuzz.sh [DURATION]
# (default 10s). A longer run: scripts/fuzz.sh 10m.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime expires while a worker is mid-call, on a loaded
# machine (golang/go#75804, fixed in Go 1.27). That is no finding: a real one
# prints "Failing input written to testdata/fuzz/...". Such a run is
# followed by a deterministic replay of the target's corpus and one more fuzz
# run; any other failure, a failing replay, or a written input fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz runs one target and keeps its output in $log.
fuzz() {
  local rc=0
  go test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" 2>&1 | tee "$log" || rc=$?
  return "$rc"
}

# deadline_race reports whether the failed run in $log is the coordinator's
# deadline race and nothing else.
deadline_race() {
  grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"
}

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "--- $pkg $target ($fuzztime)"
    fuzz "$pkg" "$target" && continue
    deadline_race || exit 1
    echo "--- $target: bare 'context deadline exceeded' at the end of -fuzztime, no failing input (golang/go#75804): replaying the corpus, then fuzzing once more"
    go test "$pkg" -run "^${target}\$" -count 1
    fuzz "$pkg" "$target" && continue
    deadline_race || exit 1
    echo "--- $target: the deadline race again; the corpus replay passed, so no input fails"
  done
done
