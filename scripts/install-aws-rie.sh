#!/usr/bin/env bash
# Installs AWS's real Lambda RIE binary (for esb-rie's conformance tests and benchmarks) from the
# aws-sam-cli wheel on PyPI, which ships it at samcli/local/rapid/aws-lambda-rie-x86_64. No Docker.
# Idempotent and safe to run concurrently; cached under target/. Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${AWS_SAM_CLI_VERSION:-1.170.0}"
case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "install-aws-rie: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
dest="$target/aws-rie/$version"
bin="$dest/aws-lambda-rie-$arch"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if [ ! -x "$bin" ]; then
  tmp="$(mktemp -d "$dest/tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "aws-sam-cli==$version" -d "$tmp" >&2
  python3 - "$tmp" "samcli/local/rapid/aws-lambda-rie-$arch" "$tmp/rie" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/aws_sam_cli-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$tmp/rie"
  mv -f "$tmp/rie" "$bin"
fi
echo "$bin"
