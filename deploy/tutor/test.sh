#!/usr/bin/env bash
# Test the Tutor plugin with the real `tutor` from PyPI: render Tutor projects
# with the plugin enabled (no Docker needed) and check what they hold
# (deploy/tutor/tests). Two optional extras, on by default:
#   - the enrollstatus binary (built here with go) is started with the rendered
#     environment, and tokens signed with Tutor's LMS keys must be accepted;
#   - Caddy (built from the Go module proxy into .cache/bin) runs Tutor's
#     rendered Caddyfile and must route the status path to enrollstatus.
# Set TUTOR_TEST_NO_BINARY=1 or TUTOR_TEST_NO_CADDY=1 to skip them.
#
#   deploy/tutor/test.sh [pytest args]
#
# TUTOR_TEST_ROOT=DIR keeps the default project's TUTOR_ROOT in DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TUTOR_VERSION=22.0.3
KUBERNETES_VALIDATE_VERSION=1.37.0
CADDY_VERSION=v2.11.9
VENV=$ROOT/.cache/venv-tutor
BIN=$ROOT/.cache/bin
log() { printf 'tutor-test: %s\n' "$*" >&2; }

# The venv: tutor, the plugin (editable) and the test tools. A stamp skips
# pip when nothing it installs has changed.
stamp="$TUTOR_VERSION $KUBERNETES_VALIDATE_VERSION $(sha256sum "$HERE/pyproject.toml" | cut -c1-16)"
if [[ ! -x $VENV/bin/tutor || $(cat "$VENV/.enrollstatus-stamp" 2>/dev/null) != "$stamp" ]]; then
  log "installing tutor $TUTOR_VERSION and the plugin into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "tutor==$TUTOR_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" pytest pyyaml -e "$HERE"
  echo "$stamp" >"$VENV/.enrollstatus-stamp"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [[ -z ${TUTOR_TEST_NO_BINARY:-} ]] && command -v go >/dev/null; then
  log "building enrollstatus"
  (cd "$ROOT" && go build -o "$WORK/enrollstatus" ./cmd/enrollstatus)
  export ENROLLSTATUS_BINARY=$WORK/enrollstatus
fi

if [[ -z ${TUTOR_TEST_NO_CADDY:-} ]] && command -v go >/dev/null; then
  if [[ ! -x $BIN/caddy-$CADDY_VERSION ]]; then
    log "building caddy $CADDY_VERSION (once; kept in .cache/bin)"
    mkdir -p "$BIN/tmp"
    (cd "$WORK" && GOBIN=$BIN/tmp GOFLAGS=-trimpath go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION")
    mv "$BIN/tmp/caddy" "$BIN/caddy-$CADDY_VERSION"
  fi
  export CADDY_BIN=$BIN/caddy-$CADDY_VERSION
fi

cd "$HERE"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
