#!/usr/bin/env bash
# Bounded soak test: scripts/soak.sh [DURATION] (default 60s; BENCHMARKS.md
# documents a 10m run). It runs `enrollstatus serve` against an in-process
# kfake broker on loopback fed continuously by a synthetic Open edX
# producer, sends a sustained open-loop query load (valid tokens for many
# users, plus 401, 403 and 404 cases), and prints per interval: requests,
# errors, latency p50/p99/p99.9 and the service's memory outside the mmap.
# It fails (exit 1) on any 5xx or transport error, an unexpected status, or
# RssAnon growing more than 20% after warm-up. Knobs: SOAK_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60s}
cache=.cache/bench
bin=$cache/bin
mkdir -p "$bin" "$cache/results" bench/results bench/plots
go build -o "$bin/enrollstatus" ./cmd/enrollstatus
(cd bench && go build -o "../$bin/enrollbench" ./cmd/enrollbench)
start=$(date +%s)
# shellcheck disable=SC2086
"$bin/enrollbench" soak -bin "$bin/enrollstatus" -cache "$cache" -duration "$duration" ${SOAK_FLAGS:-} \
  | tee "bench/results/soak-$duration.md"
"$bin/enrollbench" plot -results "$cache/results" -out bench/plots >/dev/null
echo "scripts/soak.sh $duration took $(( $(date +%s) - start ))s"
