#!/usr/bin/env bash
# Regenerates the wire fixtures under testdata/events/ and the Avro schemas under
# consumer/avroschemas/ with the real Open edX producer packages.
#
#   bash testdata/gen/generate.sh
#
# Needs Python >= 3.12 (set PYTHON=/path/to/python3.12 to choose one) and access to
# PyPI the first time; the virtualenv is kept in .cache/venv-fixtures (git-ignored).
# No Kafka broker and no schema registry are needed: see generate.py for how the
# bytes are produced. The output is deterministic: running it twice gives
# identical files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

venv="$root/.cache/venv-fixtures"
req="$root/testdata/gen/requirements.txt"

pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  local c
  for c in python3.13 python3.12 python3 \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  echo "generate.sh: no Python >= 3.12 found; set PYTHON=/path/to/python3.12" >&2
  exit 1
}

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  py="$(pick_python)"
  echo "generate.sh: creating $venv with $("$py" --version)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

export PYTHONHASHSEED=0
"$venv/bin/python" "$root/testdata/gen/generate.py" "$root"
"$venv/bin/python" "$root/testdata/gen/debezium.py" "$root"
echo "generate.sh: done" >&2
