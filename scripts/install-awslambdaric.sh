#!/usr/bin/env bash
# Creates a Python venv with awslambdaric (AWS's Python runtime interface client, from PyPI) for
# the Python test functions in tests/functions/python, run as `python3 -m awslambdaric handler.fn`.
# Idempotent and safe to run concurrently; cached under target/. Prints the venv's python path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${AWSLAMBDARIC_VERSION:-4.2.2}"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
venv="$target/awslambdaric-venv/$version"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "awslambdaric==$version" >&2
  "$venv/bin/python3" -c 'import awslambdaric' >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python3"
