#!/usr/bin/env bash
# Creates (once) a Python venv under target/ with the given PyPI packages, for tests that drive
# esb with real AWS clients (boto3, botocore). Idempotent and safe to run concurrently.
# Usage: install-python-venv.sh PACKAGE [PACKAGE...]; prints the venv's python path.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PACKAGE [PACKAGE...]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
joined="$(IFS=-; printf '%s' "$*")"
venv="$target/py-venv/$(printf '%s' "$joined" | tr -c 'A-Za-z0-9_.-' '_')"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "$@" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python3"
