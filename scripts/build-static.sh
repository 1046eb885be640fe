#!/usr/bin/env bash
# Builds statically linked esb-rie and echo (glibc, crt-static) for FROM scratch images, and checks
# they are static. crt-static is passed through RUSTFLAGS with an explicit --target, so it applies
# to the binaries but not to build scripts and proc-macros (which must stay dynamic on the host);
# that is why it is not in .cargo/config.toml.
# Output: target/x86_64-unknown-linux-gnu/release/{esb-rie,echo}; their paths are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${ESB_STATIC_TARGET:-x86_64-unknown-linux-gnu}"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" -p esb-rie --bin esb-rie -p esb-echo --bin echo >&2
out="${CARGO_TARGET_DIR:-target}/$target/release"
for bin in esb-rie echo; do
  desc="$(file -L "$out/$bin")"
  case "$desc" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "build-static: $out/$bin is not static: $desc" >&2; exit 1 ;;
  esac
  # ldd on a static-pie binary prints "statically linked" (exit 0); anything naming a .so fails.
  if ldd "$out/$bin" 2>&1 | grep -q '\.so'; then
    echo "build-static: ldd lists shared libraries for $out/$bin" >&2; exit 1
  fi
  echo "$out/$bin"
done
