#!/usr/bin/env bash
# Builds the example function image esb-echo:dev locally: FROM scratch with the static echo
# function as /var/task/bootstrap (the image's CMD) and the static esb-rie at
# /usr/local/bin/esb-rie. No registry, no base image.
#
# esb (runtime: docker, rie: injected) bind-mounts its own esb-rie and runs the CMD under it.
# The bundled esb-rie makes the image usable on its own too:
#   docker run --rm -p 127.0.0.1:9000:8080 --entrypoint /usr/local/bin/esb-rie esb-echo:dev /var/task/bootstrap
#   curl -d '{"hello":"world"}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations
#
# Usage: scripts/build-echo-image.sh [--save DIR]
#   --save DIR   also `docker save` the image to DIR/esb-echo-dev.tar (for esb's preload directory)
# Env: ESB_ECHO_IMAGE (default esb-echo:dev).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${ESB_ECHO_IMAGE:-esb-echo:dev}"
save_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --save) save_dir="${2:?--save needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-echo-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Static binaries (checked static by the script).
mapfile -t bins < <("$root/scripts/build-static.sh")
rie="" echo_bin=""
for b in "${bins[@]}"; do
  case "$(basename "$b")" in
    esb-rie) rie="$b" ;;
    echo) echo_bin="$b" ;;
  esac
done
case "$rie" in /*) ;; *) rie="$root/$rie" ;; esac
case "$echo_bin" in /*) ;; *) echo_bin="$root/$echo_bin" ;; esac
[ -x "$rie" ] && [ -x "$echo_bin" ] || { echo "build-echo-image: static binaries missing" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/var/task" "$ctx/usr/local/bin"
install -m 0755 "$echo_bin" "$ctx/var/task/bootstrap"
install -m 0755 "$rie" "$ctx/usr/local/bin/esb-rie"
cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY var/task/bootstrap /var/task/bootstrap
COPY usr/local/bin/esb-rie /usr/local/bin/esb-rie
WORKDIR /var/task
CMD ["/var/task/bootstrap"]
EOF

if ! docker build --quiet -t "$image" "$ctx" >&2; then
  # No builder available (e.g. a locked-down engine): import the same filesystem instead.
  echo "build-echo-image: docker build failed; falling back to docker import" >&2
  tar -C "$ctx" --exclude=Dockerfile -cf - . |
    docker import -c 'WORKDIR /var/task' -c 'CMD ["/var/task/bootstrap"]' - "$image" >&2
fi
echo "built $image" >&2

if [ -n "$save_dir" ]; then
  mkdir -p "$save_dir"
  docker save -o "$save_dir/esb-echo-dev.tar" "$image"
  echo "saved $save_dir/esb-echo-dev.tar" >&2
fi
echo "$image"
