#!/usr/bin/env bash
# Create (or reuse) the Python venv with the real Open edX event-bus producer:
# .cache/venv-e2e, from e2e/producer/requirements.txt. Idempotent and cached: when the
# venv was built from the same requirements.txt and Python, it only checks the imports.
# Prints the venv's python path on stdout.
#
#   e2e/producer/setup.sh            # then: "$(e2e/producer/setup.sh)" e2e/producer/produce.py ...
#
# Environment: E2E_PYTHON (default python3; needs 3.11+), E2E_VENV (default .cache/venv-e2e)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${E2E_VENV:-$ROOT/.cache/venv-e2e}"
PY="${E2E_PYTHON:-python3}"
REQ="$HERE/requirements.txt"

log() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "$PY not found"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
  die "$PY is $("$PY" -V 2>&1); openedx-events 10.5 needs Python 3.11+"

stamp="$(cat "$REQ" <("$PY" -VV) | sha256sum | cut -d' ' -f1)"
check='from django.conf import settings; settings.configure()
import django, openedx_events, edx_event_bus_kafka, confluent_kafka, fastavro, confluent_kafka.schema_registry.avro'

if [[ -f "$VENV/.e2e-stamp" && "$(cat "$VENV/.e2e-stamp")" == "$stamp" ]] &&
  "$VENV/bin/python" -c "$check" 2>/dev/null; then
  log "cached: $VENV"
  echo "$VENV/bin/python"
  exit 0
fi

t0=$SECONDS
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
if ! "$PY" -m venv "$VENV" 2>/dev/null; then
  # Debian splits ensurepip out of the interpreter
  log "python venv module incomplete; installing python3-venv with apt-get"
  rm -rf "$VENV"
  command -v apt-get >/dev/null 2>&1 || die "cannot create a venv and no apt-get"
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$ver-venv" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$ver-venv" >/dev/null
  }
  "$PY" -m venv "$VENV"
fi
log "installing $(grep -cE '^[A-Za-z]' "$REQ") pinned packages into $VENV ..."
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2
"$VENV/bin/python" -c "$check" || die "imports failed after install"
echo "$stamp" >"$VENV/.e2e-stamp"
log "ready in $((SECONDS - t0))s: $VENV"
echo "$VENV/bin/python"
