#!/usr/bin/env bash
# Check the running service against its OpenAPI document (httpapi/openapi.yaml)
# with schemathesis: every documented operation is called with generated valid
# and invalid input, and every answer must have a documented status, content
# type, headers and body, and never be a 5xx.
#
#   scripts/openapi-check.sh            (about two minutes; OPENAPI_CHECK_TIME=N seconds)
#
# It builds enrollstatus, starts `enrollstatus demo` (embedded broker,
# synthetic history) on loopback ports, waits for /readyz, mints a user token
# and uses an admin token, runs schemathesis with a time budget, and stops the
# demo by its pid. Exits non-zero on any failure. schemathesis is installed
# from PyPI into .cache/venv-schemathesis (kept between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
HTTP_ADDR=${OPENAPI_CHECK_HTTP_ADDR:-127.0.0.1:18080}
BROKER_ADDR=${OPENAPI_CHECK_BROKER_ADDR:-127.0.0.1:19192}
MAX_TIME=${OPENAPI_CHECK_TIME:-90}
SEED=${OPENAPI_CHECK_SEED:-1}
BASE=http://$HTTP_ADDR
VENV=$ROOT/.cache/venv-schemathesis
log() { printf 'openapi-check: %s\n' "$*" >&2; }

# schemathesis, in its own venv.
if [[ ! -x $VENV/bin/schemathesis ]] || [[ $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null) != "$SCHEMATHESIS_VERSION" ]]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d)
DEMO_PID=
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  if [[ -n $DEMO_PID ]] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -TERM "$DEMO_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building enrollstatus"
go build -o "$WORK/enrollstatus" ./cmd/enrollstatus

# The demo: one process with an embedded Kafka-protocol broker, a synthetic
# history of 2000 events, no live traffic (answers stay put while tested).
ADMIN_TOKEN=openapi-check-admin-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
log "starting the demo on $HTTP_ADDR (broker $BROKER_ADDR)"
"$WORK/enrollstatus" demo --http-addr "$HTTP_ADDR" --broker-addr "$BROKER_ADDR" \
  --data-dir "$WORK/data" --history 2000 --rate 0 --admin-token "$ADMIN_TOKEN" \
  --log-level warn >"$WORK/demo.out" 2>"$WORK/demo.err" &
DEMO_PID=$!

ready=
for _ in $(seq 1 300); do
  if ! kill -0 "$DEMO_PID" 2>/dev/null; then
    log "the demo exited:"; cat "$WORK/demo.err" >&2; exit 1
  fi
  if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[[ -n $ready ]] || { log "the demo is not ready after 60s:"; tail -50 "$WORK/demo.err" >&2; exit 1; }

export OPENAPI_CHECK_USER_TOKEN OPENAPI_CHECK_ADMIN_TOKEN=$ADMIN_TOKEN
OPENAPI_CHECK_USER_TOKEN=$("$WORK/enrollstatus" token --jwt-secret demo-secret --username learner1 --ttl 1h)

# The document: the one the service serves, if it serves one; else the file
# (the service does not serve /openapi.yaml yet: that operation is skipped).
SCHEMA=$ROOT/httpapi/openapi.yaml
EXCLUDE=(--exclude-path /openapi.yaml)
if [[ $(curl -s -o "$WORK/served.yaml" -w '%{http_code}' "$BASE/openapi.yaml") == 200 ]]; then
  if cmp -s "$WORK/served.yaml" "$SCHEMA"; then
    SCHEMA=$BASE/openapi.yaml EXCLUDE=()
    log "testing against the served $SCHEMA"
  else
    log "the served /openapi.yaml differs from httpapi/openapi.yaml"; exit 1
  fi
else
  log "/openapi.yaml is not served: testing against the file, without that operation"
fi

# Per-operation settings. The view checks in Django REST framework's order
# (route 404, authentication 401, permission 403, method 405), so:
# - its POST/PUT/PATCH/DELETE are documented with 401/403/404/405 only: no
#   request to them can be "accepted" (positive_data_acceptance does not
#   apply), and its Allow header names GET, HEAD and OPTIONS only, as the LMS's
#   does, not every documented method (allow_header_conformance does not apply);
# - the slash-less route redirects (301) whatever the method, before any
#   other check, like Django's APPEND_SLASH; and on the view, an undocumented
#   method for another user's name is 403 before it is 405: the
#   unsupported_method check does not apply to these two paths.
cat >"$WORK/schemathesis.toml" <<'EOF'
[[operations]]
include-tag = "status"
headers = { Authorization = "JWT ${OPENAPI_CHECK_USER_TOKEN}" }
checks.unsupported_method.enabled = false
checks.allow_header_conformance.enabled = false

[[operations]]
include-tag = "status"
include-method = ["POST", "PUT", "PATCH", "DELETE"]
checks.positive_data_acceptance.enabled = false

[[operations]]
include-tag = "admin"
headers = { Authorization = "Bearer ${OPENAPI_CHECK_ADMIN_TOKEN}" }
# A request target over the configured limit is refused with 414 before its
# parameters are read: a rejection too.
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "409", "414", "422"]

EOF

log "schemathesis for up to ${MAX_TIME}s (seed $SEED)"
set +e
"$VENV/bin/schemathesis" --no-color --config-file "$WORK/schemathesis.toml" run "$SCHEMA" \
  --url "$BASE" --seed "$SEED" --max-time "$MAX_TIME" \
  --request-timeout 10 --max-failures 50 \
  --warnings off "${EXCLUDE[@]}"
rc=$?
set -e

if ! kill -0 "$DEMO_PID" 2>/dev/null; then
  log "the demo died during the run:"; tail -50 "$WORK/demo.err" >&2; exit 1
fi
if grep -q '"level":"ERROR"\|level=ERROR' "$WORK/demo.err"; then
  log "the demo logged errors:"; grep '"level":"ERROR"\|level=ERROR' "$WORK/demo.err" | head -20 >&2
  rc=1
fi
if ((rc == 0)); then log "ok"; else log "FAILED (exit $rc)"; fi
exit "$rc"
