#!/usr/bin/env bash
# Install the command-line tools the end-to-end suite and its docs use, from Debian's
# packages: kcat (raw Kafka produce/consume with keys and headers), curl, xxd (hexdump
# of message bytes). Idempotent: installs only what is missing, and runs apt-get update
# only when an install fails without it (or the package lists are empty).
#
#   scripts/install-tools.sh
set -euo pipefail

# command -> Debian package
declare -A PKG=([kcat]=kcat [curl]=curl [xxd]=xxd)

missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done
if ((${#missing[@]} == 0)); then
  echo "install-tools: all present ($(kcat -V 2>/dev/null | grep -i -m1 version))" >&2
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "install-tools: no apt-get; install ${missing[*]} by hand" >&2; exit 1; }
SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive

echo "install-tools: installing ${missing[*]}" >&2
lists_empty() { ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; }
if lists_empty || ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "install-tools: apt-get update (once)" >&2
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "install-tools: $cmd still missing" >&2; exit 1; }
done
echo "install-tools: done ($(kcat -V 2>/dev/null | grep -i -m1 version))" >&2
