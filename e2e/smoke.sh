#!/usr/bin/env bash
# Smoke test of the real-broker infrastructure, end to end, with timings:
# tools, Kafka jars, producer venv, a fresh broker on a free port, topics, the schema
# registry, the REAL Open edX producer, kcat checks of keys/values/headers, a native
# JSON CloudEvent with kcat, clean and crash restarts keeping data, added partitions, stop.
#
#   e2e/smoke.sh [EVENTS]        (default 300; leaves nothing running)
#
# Exit 0 when every check passed. Uses its own run dir and port, so it does not touch a
# broker started with the defaults.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-300}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/enrollstatus-smoke.XXXXXX")"
KDIR="$WORK/kafka"
REG_PID=""
KAFKA="$ROOT/scripts/kafka.sh"

declare -a TIMINGS=()
step_t0=0
step() { step_t0="$(date +%s.%N)"; printf '\n== %s\n' "$*" >&2; }
took() { TIMINGS+=("$(awk -v a="$step_t0" -v b="$(date +%s.%N)" -v s="$1" 'BEGIN { printf "%-42s %6.1fs", s, b - a }')"); }
fail() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'smoke: ok: %s\n' "$*" >&2; }

cleanup() {
  [[ -n "$REG_PID" ]] && kill "$REG_PID" 2>/dev/null || true
  "$KAFKA" stop --dir "$KDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "tools (kcat)"
"$ROOT/scripts/install-tools.sh"
took "install-tools.sh"

step "Kafka jars"
"$KAFKA" install
took "kafka.sh install"

step "producer venv"
PY="$("$ROOT/e2e/producer/setup.sh")"
took "e2e/producer/setup.sh"

step "broker"
BOOT="$("$KAFKA" start --port 0 --dir "$KDIR")"
took "kafka.sh start (format + boot)"
ok "broker at $BOOT"

step "topics"
declare -A PARTS=(
  [dev-learning-course-enrollment-lifecycle]=4
  [dev-course-unenrollment-lifecycle]=2
  [dev-course-catalog-info-changed]=2
  [dev-analytics]=3
  [enrollstatus-events]=3
)
for t in "${!PARTS[@]}"; do "$KAFKA" create-topic "$t" "${PARTS[$t]}" --dir "$KDIR" 2>/dev/null; done
took "kafka.sh create-topic x5"

step "schema registry"
"$PY" "$ROOT/e2e/producer/registry.py" --port 0 --port-file "$WORK/registry.port" --store "$WORK/registry.json" \
  >"$WORK/registry.out" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/registry.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/registry.port" ]] || fail "registry did not start: $(cat "$WORK/registry.out")"
REG="http://127.0.0.1:$(cat "$WORK/registry.port")"
ok "registry at $REG"

step "history ($N events + 1 duplicate)"
"$PY" - "$N" >"$WORK/history.jsonl" <<'EOF'
import json, random, sys, uuid
from datetime import datetime, timedelta, timezone
n = int(sys.argv[1]); r = random.Random(42)
base = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
courses = [f"course-v1:Org{i}+C{i}+Run" for i in range(4)]
def eid(): return str(uuid.UUID(int=r.getrandbits(128), version=4))
def t(s): return (base + timedelta(seconds=s, microseconds=r.randint(0, 999999))).isoformat()
out = [{"type": "catalog_info.changed", "course_id": c, "course_name": f"Course {i}", "time": t(0), "event_id": eid()}
       for i, c in enumerate(courses)]
kinds = ["enrollment.created", "enrollment.changed", "unenrollment.completed", "completion", "completion", "tracking.other"]
while len(out) < n:
    u = r.randint(1, 50); c = r.choice(courses); k = r.choice(kinds); s = r.randint(1, 3600)
    e = {"type": k, "user_id": u, "username": f"u{u}", "course_id": c, "time": t(s), "event_id": eid()}
    if k.startswith("enrollment") or k.startswith("unenrollment"):
        e.update(mode=r.choice(["audit", "verified"]), is_active=(k != "unenrollment.completed"), creation_date=t(0))
    if k == "completion":
        e["block_id"] = f"block-v1:{c[10:]}+type@problem+block@p{r.randint(1, 9)}"
    out.append(e)
out.append(dict(out[-1]))  # a real duplicate: same event_id
for e in out: print(json.dumps(e))
EOF
TOTAL="$(wc -l <"$WORK/history.jsonl")"

step "produce with the real Open edX producer"
"$PY" "$ROOT/e2e/producer/produce.py" --bootstrap "$BOOT" --registry "$REG" --history "$WORK/history.jsonl" \
  --deliveries "$WORK/deliveries.jsonl" >"$WORK/summary.json"
took "produce.py ($TOTAL events)"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("ok","events","delivered","topics","rate_per_s","seconds")}))' "$WORK/summary.json" >&2

step "kcat: counts, headers, Confluent framing"
count() { kcat -C -e -q -b "$BOOT" -t "$1" -f 'x\n' | wc -l; }
declare -A EXPECT
eval "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(f"EXPECT[{t}]={n}") for t, n in d["topics"].items()]' "$WORK/summary.json")"
for t in "${!EXPECT[@]}"; do
  got="$(count "$t")"
  [[ "$got" == "${EXPECT[$t]}" ]] || fail "$t: kcat sees $got messages, producer delivered ${EXPECT[$t]}"
  ok "$t: $got messages"
  # every message: the CloudEvent headers edx-event-bus-kafka writes
  kcat -C -e -q -b "$BOOT" -t "$t" -f '%h\n' >"$WORK/headers.txt"
  for h in ce_type= ce_id= ce_source= ce_time= ce_specversion=1.0 ce_minorversion= content-type=application/avro sourcehost= sourcelib=; do
    missing="$(grep -vc -- "$h" "$WORK/headers.txt" || true)"
    [[ "$missing" == 0 ]] || fail "$t: $missing messages without header $h"
  done
  ok "$t: all headers present ($(head -n1 "$WORK/headers.txt" | tr ',' '\n' | sed -n 's/^ce_type=//p'))"
  # framing of the first message of every non-empty partition: 0x00 + 4-byte schema id
  for p in $(seq 0 $((PARTS[$t] - 1))); do
    v="$(kcat -C -e -q -b "$BOOT" -t "$t" -p "$p" -o beginning -c 1 -f '%s' | xxd -p -l 5)"
    [[ -z "$v" ]] && continue
    k="$(kcat -C -e -q -b "$BOOT" -t "$t" -p "$p" -o beginning -c 1 -f '%k' | xxd -p -l 5)"
    [[ "$v" == 00* && "$k" == 00* ]] || fail "$t/$p: not Confluent-framed: value $v key $k"
    id=$((16#${v:2:8}))
    curl -fsS "$REG/schemas/ids/$id" | grep -q CloudEvent || fail "$t/$p: schema id $id not in the registry"
    ok "$t/$p: value 0x$v (schema $id), key 0x$k"
  done
done
dups="$(cut -d'"' -f4 "$WORK/deliveries.jsonl" | sort | uniq -d | wc -l)"
[[ "$dups" -ge 1 ]] || fail "the duplicate event_id was not delivered twice"
ok "duplicate event_id delivered twice with the same ce_id"

step "full decode through the registry"
"$PY" - "$BOOT" "$REG" "$TOTAL" "${!EXPECT[@]}" <<'EOF'
import sys
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
boot, reg, total, topics = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
de = AvroDeserializer(SchemaRegistryClient({"url": reg}))
c = Consumer({"bootstrap.servers": boot, "group.id": "smoke", "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe(topics)
n, idle = 0, 0
while n < total and idle < 20:
    m = c.poll(0.5)
    if m is None:
        idle += 1
        continue
    assert not m.error(), m.error()
    v = de(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
    k = de(m.key(), SerializationContext(m.topic(), MessageField.KEY))
    h = {x: y.decode() for x, y in m.headers()}
    if "enrollment" in v:
        assert k == v["enrollment"]["course"]["course_key"], (k, v)
    elif "catalog_info" in v:
        assert k == v["catalog_info"]["course_key"]
    else:
        assert k == v["tracking_log"]["name"]
    n += 1
c.close()
assert n == total, f"decoded {n} of {total}"
print(f"smoke: ok: decoded all {n} messages (key and value) via the registry", file=sys.stderr)
EOF

step "native JSON CloudEvent with kcat"
ce='{"specversion":"1.0","type":"enrollstatus.course.v1","id":"0b6c3f4e-0000-4000-8000-000000000001","source":"e2e/smoke","time":"2026-11-01T10:00:00Z","data":{"course_key":"course-v1:Org0+C0+Run","display_name":"Course 0","mobile_available":true}}'
printf '%s\n' "$ce" | kcat -P -b "$BOOT" -t enrollstatus-events -k course-v1:Org0+C0+Run \
  -H content-type=application/cloudevents+json -H ce_type=enrollstatus.course.v1
got="$(kcat -C -e -q -b "$BOOT" -t enrollstatus-events -f '%k|%h|%s\n')"
[[ "$got" == "course-v1:Org0+C0+Run|content-type=application/cloudevents+json,ce_type=enrollstatus.course.v1|$ce" ]] ||
  fail "kcat round trip: $got"
ok "kcat JSON CloudEvent round trip with key and headers"

snapshot() { for t in $(printf '%s\n' "${!EXPECT[@]}" enrollstatus-events | sort); do printf '%s=%s ' "$t" "$(count "$t")"; done; }
before="$(snapshot)"

step "restart (clean), data kept"
"$KAFKA" restart --dir "$KDIR" >/dev/null
took "kafka.sh restart"
[[ "$(snapshot)" == "$before" ]] || fail "data changed over restart: $before -> $(snapshot)"
ok "all messages still there"

step "restart --kill (crash), data kept"
"$KAFKA" restart --kill --dir "$KDIR" >/dev/null
took "kafka.sh restart --kill"
[[ "$(snapshot)" == "$before" ]] || fail "data changed over crash restart: $before -> $(snapshot)"
ok "all messages still there"

step "add partitions"
"$KAFKA" add-partitions dev-analytics 6 --dir "$KDIR"
took "kafka.sh add-partitions"
"$KAFKA" add-partitions dev-analytics 6 --dir "$KDIR" # idempotent
"$KAFKA" status --dir "$KDIR" | grep -q 'dev-analytics.*PartitionCount: 6' || fail "dev-analytics has not 6 partitions"
ok "dev-analytics has 6 partitions"
"$PY" "$ROOT/e2e/producer/produce.py" --bootstrap "$BOOT" --registry "$REG" --history "$WORK/history.jsonl" \
  --limit 50 >"$WORK/summary2.json" || fail "producing after adding partitions"
ok "produced again after adding partitions"

step "stop"
"$KAFKA" stop --dir "$KDIR"
took "kafka.sh stop"
if "$KAFKA" status --dir "$KDIR" >/dev/null; then fail "still running after stop"; fi
ok "stopped"

printf '\nsmoke: timings\n' >&2
printf '  %s\n' "${TIMINGS[@]}" >&2
printf 'smoke: all checks passed\n' >&2
