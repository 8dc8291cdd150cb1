#!/usr/bin/env bash
# Benchmarks of enrollstatus (see BENCHMARKS.md):
#   scripts/bench.sh query|ingest|rebuild|micro|plot|all
# Every load targets loopback only, is bounded in count and time, and stops
# by itself. Figures are ratios against a baseline measured in the same run.
# Projections are built once and cached in .cache/bench/projections (the 3M
# users one takes about 10 GB and 15 minutes); results land in
# .cache/bench/results (JSON) and bench/results (Markdown), plots in
# bench/plots. Knobs: QUERY_FLAGS, INGEST_FLAGS, REBUILD_FLAGS (extra flags
# of bench/cmd/enrollbench), BENCH_COUNT (go test -count of micro).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cache=.cache/bench
bin=$cache/bin
mkdir -p "$bin" "$cache/results" bench/results bench/plots
go build -o "$bin/enrollstatus" ./cmd/enrollstatus
(cd bench && go build -o "../$bin/enrollbench" ./cmd/enrollbench)
eb="$bin/enrollbench"
stamp() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

query() {
  stamp "query: real handler on 10k/1M/3M users vs bare echo"
  # shellcheck disable=SC2086
  "$eb" query -self "$eb" -bin "$bin/enrollstatus" -cache "$cache" ${QUERY_FLAGS:-} | tee bench/results/query.md
}
ingest() {
  stamp "ingest: end to end vs raw fetch, and vs batch size"
  # shellcheck disable=SC2086
  "$eb" ingest -self "$eb" -cache "$cache" ${INGEST_FLAGS:-} | tee bench/results/ingest.md
}
rebuild() {
  stamp "rebuild: enrollstatus rebuild vs raw fetch time"
  # shellcheck disable=SC2086
  "$eb" rebuild -self "$eb" -bin "$bin/enrollstatus" -cache "$cache" ${REBUILD_FLAGS:-} | tee bench/results/rebuild.md
}
micro() {
  stamp "micro: go test -bench -benchmem of the hot paths"
  go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-1}" ./store ./consumer ./internal/jsonscan ./httpapi ./httpapi/jwtauth | tee bench/results/micro.txt
}
plots() {
  stamp "plots"
  "$eb" plot -results "$cache/results" -out bench/plots
}

start=$(date +%s)
case "$what" in
  query) query; plots ;;
  ingest) ingest; plots ;;
  rebuild) rebuild ;;
  micro) micro ;;
  plot) plots ;;
  all) micro; ingest; rebuild; query; plots ;;
  *) echo "usage: scripts/bench.sh query|ingest|rebuild|micro|plot|all" >&2; exit 2 ;;
esac
echo "scripts/bench.sh $what took $(( $(date +%s) - start ))s"
