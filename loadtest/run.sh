#!/usr/bin/env bash
# Load tests for capacity sizing. Everything runs on loopback and stops by itself.
#
#   loadtest/run.sh [warm|capacity|cold-storm|docker-warm|callgrind] [--quick] [options]
#
# Each run builds release binaries, starts what the scenario needs (servers pinned to core 0,
# the load generator to core 1), runs it, tears everything down (trap) and writes
# loadtest/results/<UTC timestamp>-<scenario>/ with runs/*.json (one per load-generator run),
# summary.json (named figures), summary.md (tables) and plot.png. See docs/performance.md.
#
# Options:
#   --quick          a smoke run that finishes in under 2 minutes
#   --envs K         warm RIE+echo environments, or docker-warm containers (default 2)
#   --slo-ms MS      the p99 latency objective (default: warm 10, capacity sleep_ms*2+10)
#   --rounds N       interleaved rounds per rate (default: 2, quick 1)
#   --duration S     measured seconds per point (default: 10, quick 3)
#   --sleep-ms MS    function cost for `capacity` (echo's sleep_ms, default 10)
#   --target T       what `capacity` sweeps: esb (default when esb serves) or direct
#   --no-install     do not apt-get install haproxy/nginx/matplotlib when they are missing
#   --no-build       use the release binaries already in target/release (docker-warm: and the
#                    image esb-echo:dev and static esb-rie from scripts/build-echo-image.sh)
#   --nice N         niceness of the servers and the load generator (default -10 as root, else 0),
#                    so builds running beside a benchmark disturb it less
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCENARIO=warm
case "${1:-}" in
    warm | capacity | cold-storm | docker-warm | callgrind) SCENARIO=$1; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --*|"") ;;
    *) echo "unknown scenario $1 (warm, capacity, cold-storm, docker-warm, callgrind)" >&2; exit 2 ;;
esac

QUICK=0 ENVS=2 SLO_MS= ROUNDS= DURATION= SLEEP_MS=10 TARGET= INSTALL=1 BUILD=1 NICE=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --envs) ENVS=$2; shift ;;
        --slo-ms) SLO_MS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --sleep-ms) SLEEP_MS=$2; shift ;;
        --target) TARGET=$2; shift ;;
        --no-install) INSTALL=0 ;;
        --no-build) BUILD=0 ;;
        --nice) NICE=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}" "${DURATION:=3}"
    WARMUP=1
else
    : "${ROUNDS:=2}" "${DURATION:=10}"
    WARMUP=2
fi

if [ -z "$NICE" ]; then if [ "$(id -u)" = 0 ]; then NICE=-10; else NICE=0; fi; fi

# Two cores: servers on 0, the load generator on 1. On one core both share it (and say so).
if [ "$(nproc)" -ge 2 ]; then SERVER_CORE=0 LOADGEN_CORE=1; else SERVER_CORE=0 LOADGEN_CORE=0; fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/loadtest/results/$STAMP-$SCENARIO"
mkdir -p "$OUT/runs" "$OUT/logs" "$OUT/conf"
PY=/usr/bin/python3
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
LG="$BIN/esb-loadgen"
EVENT_TEMPLATE="$ROOT/loadtest/events/apigw-v1.json"
INVOKE_PATH=/2015-03-31/functions/function/invocations
API_KEY=dev-api-key-change-in-production
LOGIN_BODY='{"AuthParameters":{"USERNAME":"demo","PASSWORD":"demo-pass"}}'

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- teardown -------------------------------------------------------------------------------
PIDS=()
POLICY_RC_CREATED=0
# docker-warm: the esb.owner label of the containers this run's esb starts (set before esb starts).
DOCKER_OWNER=
ESB_PID=
cleanup() {
    local pid n
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        # Bounded: a server that ignores SIGTERM gets SIGKILL after ~3 s; an esb removing its
        # containers on SIGTERM gets ~15 s.
        n=30
        if [ -n "$DOCKER_OWNER" ] && [ "$pid" = "$ESB_PID" ]; then n=150; fi
        for _ in $(seq "$n"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ -n "$DOCKER_OWNER" ]; then
        # Whatever esb left behind (it was SIGKILLed, or died first): exactly this run's containers.
        local left
        left=$(docker ps -aq --filter "label=esb.owner=$DOCKER_OWNER" 2>/dev/null) || true
        if [ -n "$left" ]; then
            log "removing $(echo "$left" | wc -l) container(s) esb left behind (esb.owner=$DOCKER_OWNER)"
            # shellcheck disable=SC2086 # one id per word
            docker rm -f $left >>"$OUT/logs/teardown.log" 2>&1 || true
        fi
    fi
    if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

# Starts a command in the background pinned to the server core; logs to logs/<name>.log.
# The process id is left in SPAWNED (not echoed: a $(...) subshell would lose it from PIDS).
SPAWNED=
spawn() {
    local name=$1; shift
    nice -n "$NICE" taskset -c "$SERVER_CORE" "$@" >"$OUT/logs/$name.log" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# Stops one process this script started: SIGTERM, then SIGKILL after 5 s (esb drains requests
# in flight, and under valgrind that can take a long time).
stop() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Waits (bounded) until something listens on 127.0.0.1:$1; fails if process $2 died first.
wait_port() {
    local port=$1 pid=${2:-} name=${3:-server}
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before listening on $port (see $OUT/logs/)"; return 1
        fi
        sleep 0.05
    done
    log "$name did not listen on $port within 10 s"; return 1
}

free_ports() { "$LG" free-ports "$1"; }
lg() { nice -n "$NICE" "$LG" "$@"; }

# --- setup ----------------------------------------------------------------------------------
ensure_packages() {
    local missing=()
    command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    $PY -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$INSTALL" = 0 ] || [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]} (install them, or run as root without --no-install)"
        return 1
    fi
    log "installing ${missing[*]} with apt-get"
    # Keep the packages' services from starting on :80 etc.; we run our own configs.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        >"$OUT/logs/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update >>"$OUT/logs/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            >>"$OUT/logs/apt.log" 2>&1
    fi
    if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

build() {
    [ "$BUILD" = 0 ] && return 0
    log "building release binaries"
    cargo build --release -q -p esb-loadgen -p esb-rie -p esb-echo
    # esb is built too; whether it serves is checked when it is started.
    cargo build --release -q -p esb 2>"$OUT/logs/esb-build.log" || log "esb does not build (see logs/esb-build.log)"
}

make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$OUT/conf/key.pem" -out "$OUT/conf/cert.pem" 2>/dev/null
    cat "$OUT/conf/cert.pem" "$OUT/conf/key.pem" >"$OUT/conf/haproxy.pem"
}

# The event the direct and proxy targets POST to RIE (what esb would build for GET /echo/bench).
make_event() {
    sed "s/\"0\"/\"$1\"/g" "$EVENT_TEMPLATE" >"$OUT/conf/event-sleep$1.json"
    echo "$OUT/conf/event-sleep$1.json"
}

RIE_PORTS=()
start_envs() {
    local k=$1 i ports
    mapfile -t ports < <(free_ports $((2 * k)))
    for ((i = 0; i < k; i++)); do
        local inv=${ports[$((2 * i))]} api=${ports[$((2 * i + 1))]}
        AWS_LAMBDA_FUNCTION_NAME="echo$i" spawn "rie-$i" "$BIN/esb-rie" \
            --runtime-interface-emulator-address "127.0.0.1:$inv" \
            --runtime-api-address "127.0.0.1:$api" "$BIN/echo"
        wait_port "$inv" "$SPAWNED" "esb-rie $i"
        RIE_PORTS+=("$inv")
    done
    warm_envs
}

# Warms every environment in RIE_PORTS (the runtime starts on the first invoke).
warm_envs() {
    local urls=() inv
    for inv in "${RIE_PORTS[@]}"; do urls+=(--url "http://127.0.0.1:$inv$INVOKE_PATH"); done
    lg burst "${urls[@]}" --method POST --body-file "$(make_event 0)" --cores "$LOADGEN_CORE" \
        --label warmup --out "$OUT/logs/warmup.json" 2>>"$OUT/logs/loadgen.log"
}

HAPROXY_PORT=
write_haproxy_conf() {
    HAPROXY_PORT=$(free_ports 1)
    local i
    {
        cat <<EOF
# One thread on the server core; TLS terminated here; one connection per environment.
global
    nbthread 1
    maxconn 4096
    log stderr format raw local0 err
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    timeout http-keep-alive 30s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT ssl crt $OUT/conf/haproxy.pem alpn http/1.1
    default_backend rie
backend rie
    balance leastconn
EOF
        for i in "${!RIE_PORTS[@]}"; do
            echo "    server env$i 127.0.0.1:${RIE_PORTS[$i]} maxconn 1"
        done
    } >"$OUT/conf/haproxy.cfg"
}
start_haproxy() {
    write_haproxy_conf
    spawn haproxy haproxy -db -f "$OUT/conf/haproxy.cfg"
    wait_port "$HAPROXY_PORT" "$SPAWNED" haproxy
}

NGINX_PORT=
write_nginx_conf() {
    NGINX_PORT=$(free_ports 1)
    mkdir -p "$OUT/nginx"
    local i
    {
        cat <<EOF
# One worker on the server core; TLS terminated here. Open-source nginx has no per-server
# queue: max_conns=1 keeps one request per environment and answers 502 when all are busy.
worker_processes 1;
daemon off;
pid $OUT/nginx/nginx.pid;
error_log $OUT/logs/nginx-error.log error;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/body;
    proxy_temp_path $OUT/nginx/proxy;
    fastcgi_temp_path $OUT/nginx/fastcgi;
    uwsgi_temp_path $OUT/nginx/uwsgi;
    scgi_temp_path $OUT/nginx/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    upstream rie {
        least_conn;
EOF
        for i in "${!RIE_PORTS[@]}"; do
            echo "        server 127.0.0.1:${RIE_PORTS[$i]} max_conns=1;"
        done
        cat <<EOF
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $OUT/conf/cert.pem;
        ssl_certificate_key $OUT/conf/key.pem;
        ssl_session_cache shared:SSL:1m;
        location / {
            proxy_pass http://rie;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
        }
    }
}
EOF
    } >"$OUT/conf/nginx.conf"
}
start_nginx() {
    write_nginx_conf
    spawn nginx /usr/sbin/nginx -c "$OUT/conf/nginx.conf" -p "$OUT/nginx"
    wait_port "$NGINX_PORT" "$SPAWNED" nginx
}

# esb with cognito auth on routes to the same environments. esb-config has one endpoint per
# function, so each environment is its own function and route (/eI/...), and the load generator
# spreads its connections over the routes; HAProxy and nginx do the balancing themselves.
ESB_PORT= ESB_ADMIN= ESB_BLOCKED=
ESB_URLS=()
write_esb_config() {
    local dir=$1 functions=$2 routes=$3 extra=${4:-}
    mkdir -p "$dir"
    cat >"$dir/esb.toml" <<EOF
routing = "routing.yml"
functions = "functions.yml"

[server]
listen = "127.0.0.1:$ESB_PORT"
admin_listen = "127.0.0.1:$ESB_ADMIN"
workers = 1
driver = "auto"

[tls]
cert = "$OUT/conf/cert.pem"
key = "$OUT/conf/key.pem"

EOF
    [ -z "$extra" ] || printf '%s\n\n' "$extra" >>"$dir/esb.toml"
    # The auth section (api key, demo user) is the example config's, with a signing key from a
    # file so that tokens outlive one esb process.
    [ -f "$OUT/conf/jwt.pem" ] ||
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/conf/jwt.pem" 2>/dev/null
    sed -n '/^\[auth\]/,$p' "$ROOT/config/esb.toml" |
        sed "/^\[auth\]/a rsa_private_key = \"$OUT/conf/jwt.pem\"" >>"$dir/esb.toml"
    printf '%s\n' "$functions" >"$dir/functions.yml"
    printf '%s\n' "$routes" >"$dir/routing.yml"
}

# start_esb DIR [listen-only]: the probe (a logged-in GET of ESB_URLS[0]) invokes the function,
# so a cold-start test skips it after the first start.
start_esb() {
    local dir=$1 probe=${2:-probe}
    if [ ! -x "$BIN/esb" ]; then ESB_BLOCKED="esb binary does not build"; return 1; fi
    spawn esb "$BIN/esb" serve --config "$dir/esb.toml"
    ESB_PID=$SPAWNED
    if ! wait_port "$ESB_PORT" "$ESB_PID" esb 2>>"$OUT/logs/loadgen.log"; then
        ESB_BLOCKED="esb serve does not listen yet: $(tail -n 3 "$OUT/logs/esb.log" | tr '\n' ' ' | cut -c1-300)"
        return 1
    fi
    [ "$probe" = probe ] || return 0
    probe_esb
}

# Does esb answer a logged-in request? Stops it when not, unless it runs this run's containers
# (docker-warm), which the other targets still measure.
probe_esb() {
    if ! lg burst --url "${ESB_URLS[0]}" --connections 1 --cores "$LOADGEN_CORE" \
        --login-url "https://127.0.0.1:$ESB_PORT/user/auth/v1" --login-header "x-api-key: $API_KEY" \
        --login-body "$LOGIN_BODY" --label esb-probe --out "$OUT/logs/esb-probe.json" \
        2>>"$OUT/logs/loadgen.log" ||
        ! $PY -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] == 1 else 1)' \
            "$OUT/logs/esb-probe.json"; then
        ESB_BLOCKED="esb listens but does not serve a logged-in GET ${ESB_URLS[0]} yet: $(grep -m1 -E 'WARN|ERROR' "$OUT/logs/esb.log" | cut -c1-300)"
        [ -n "$DOCKER_OWNER" ] || stop "$ESB_PID"
        return 1
    fi
}

# write_esb_echo_conf K SLEEP_MS BODY [EXTRA_TOML]: K functions echo0..echoK-1, whose keys
# `BODY I` prints, each behind /eI/{proxy+} (cognito auth) and /nI/{proxy+} (no auth).
write_esb_echo_conf() {
    local k=$1 sleep_ms=$2 body=$3 extra=${4:-}
    local ports; mapfile -t ports < <(free_ports 2); ESB_PORT=${ports[0]} ESB_ADMIN=${ports[1]}
    local functions="functions:" routes="routes:" i
    ESB_URLS=()
    for ((i = 0; i < k; i++)); do
        functions+=$'\n'"  echo$i:"$'\n'"$("$body" "$i")"
        routes+=$'\n'"  - path: \"/e$i/{proxy+}\""$'\n'"    method: ANY"$'\n'"    function: echo$i"$'\n'"    auth: cognito"
        # The same function without auth, so callgrind can tell the token check's share.
        routes+=$'\n'"  - path: \"/n$i/{proxy+}\""$'\n'"    method: ANY"$'\n'"    function: echo$i"$'\n'"    auth: none"
        ESB_URLS+=("https://127.0.0.1:$ESB_PORT/e$i/bench?sleep_ms=$sleep_ms")
    done
    write_esb_config "$OUT/conf/esb" "$functions" "$routes" "$extra"
}

# Function I as a fixed endpoint: the RIE environment RIE_PORTS[I] started by this script.
endpoint_function() {
    printf '    runtime: endpoint\n    endpoint: "http://127.0.0.1:%s"\n    timeout: 30' "${RIE_PORTS[$1]}"
}

write_esb_endpoints_conf() {
    write_esb_echo_conf "${#RIE_PORTS[@]}" "${1:-0}" endpoint_function
}
start_esb_endpoints() {
    write_esb_endpoints_conf "$@"
    start_esb "$OUT/conf/esb"
}

# --- load -----------------------------------------------------------------------------------
# lg_run TARGET RATE ROUND EXTRA...: one open-model point into runs/.
lg_run() {
    local target=$1 rate=$2 round=$3; shift 3
    lg run --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" --cores "$LOADGEN_CORE" \
        --label "$target" --out "$OUT/runs/$target-r$rate-round$round.json" "$@" \
        2>>"$OUT/logs/loadgen.log"
    tail -n 1 "$OUT/logs/loadgen.log" >&2
}

# Target argument sets, by name.
declare -A TARGET_ARGS
set_targets() {
    local event=$1 sleep_ms=$2 inv
    local direct=() proxied
    for inv in "${RIE_PORTS[@]}"; do direct+=(--url "http://127.0.0.1:$inv$INVOKE_PATH"); done
    local k=${#RIE_PORTS[@]}
    TARGET_ARGS[direct]="${direct[*]} --connections $k --method POST --body-file $event"
    [ -n "$HAPROXY_PORT" ] && TARGET_ARGS[haproxy]="--url https://127.0.0.1:$HAPROXY_PORT$INVOKE_PATH --connections $k --method POST --body-file $event"
    [ -n "$NGINX_PORT" ] && TARGET_ARGS[nginx]="--url https://127.0.0.1:$NGINX_PORT$INVOKE_PATH --connections $k --method POST --body-file $event"
    if [ -z "$ESB_BLOCKED" ] && [ ${#ESB_URLS[@]} -gt 0 ]; then
        local u esb=()
        for u in "${ESB_URLS[@]}"; do esb+=(--url "$u"); done
        TARGET_ARGS[esb]="${esb[*]} --connections $k --login-url https://127.0.0.1:$ESB_PORT/user/auth/v1 --login-header x-api-key:$API_KEY --login-body $LOGIN_BODY"
    fi
    : "$sleep_ms"
}

# The most the direct path does with one connection per environment (closed model, 3 s).
calibrate() {
    lg run ${TARGET_ARGS[direct]} --duration 3 --warmup 1 --cores "$LOADGEN_CORE" \
        --label calibrate --out "$OUT/runs/calibrate.json" 2>>"$OUT/logs/loadgen.log"
    tail -n 1 "$OUT/logs/loadgen.log" >&2
    $PY -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["rate_achieved"]))' "$OUT/runs/calibrate.json"
}

# sweep "t1 t2 ..." "r1 r2 ...": every rate, targets in rotating order, ROUNDS times. A target
# that is far past its knee (achieved < 80% offered or >5% errors) at two rates in a row skips its
# higher rates; one such point may be a stall from outside (the machine is shared).
sweep() {
    local targets=($1) rates=($2) round rate i n=${#targets[@]} rot=0
    declare -A dead=() strikes=() struck=()
    for rate in "${rates[@]}"; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for ((i = 0; i < n; i++)); do
                local t=${targets[$(((i + rot) % n))]}
                [ -n "${dead[$t]:-}" ] && continue
                # shellcheck disable=SC2086 # the argument sets are word lists on purpose
                lg_run "$t" "$rate" "$round" ${TARGET_ARGS[$t]}
                if $PY - "$OUT/runs/$t-r$rate-round$round.json" <<'EOF'; then struck[$t]=1; fi
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["rate_achieved"] < 0.8 * r["rate_requested"] or r["error_rate"] > 0.05 else 1)
EOF
            done
            rot=$((rot + 1))
        done
        for t in "${targets[@]}"; do
            if [ -n "${struck[$t]:-}" ]; then strikes[$t]=$((${strikes[$t]:-0} + 1)); else strikes[$t]=0; fi
            struck[$t]=
            if [ "${strikes[$t]}" -ge 2 ] && [ -z "${dead[$t]:-}" ]; then
                dead[$t]=1
                log "$t saturated at two rates in a row (last $rate/s); skipping its higher rates"
            fi
        done
    done
}

machine_json() {
    $PY - "$SERVER_CORE" "$LOADGEN_CORE" <<'EOF'
import json, os, platform, subprocess, sys
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def ver(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:
        return None
print(json.dumps({
    "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
    "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "server_core": int(sys.argv[1]), "loadgen_core": int(sys.argv[2]),
    "haproxy": ver(["haproxy", "-v"]), "nginx": ver(["/usr/sbin/nginx", "-v"]),
    "openssl": ver(["openssl", "version"]),
}))
EOF
}

write_meta() {
    # Settings for report.py; figures are computed there from runs/.
    $PY - "$OUT/meta.json" "$@" <<'EOF'
import json, sys
meta = dict(a.split("=", 1) for a in sys.argv[2:])
meta["machine"] = json.loads(meta["machine"])
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF
}

# --- scenarios ------------------------------------------------------------------------------
# compare_warm SCENARIO META...: with the environments in RIE_PORTS warm and esb (when it
# serves) routing to them, starts HAProxy and nginx over the same ports, then sweeps direct,
# haproxy, nginx and esb at fractions of direct's maximum and writes the report.
compare_warm() {
    local scenario=$1; shift
    start_haproxy
    start_nginx
    set_targets "$(make_event 0)" 0
    local cap fractions rates="" f targets="direct haproxy nginx"
    [ -n "${TARGET_ARGS[esb]:-}" ] && targets="direct haproxy nginx esb"
    cap=$(calibrate)
    log "direct closed-model maximum with $ENVS connections: $cap/s"
    if [ "$QUICK" = 1 ]; then fractions="0.1 0.25 0.4 0.6"; else fractions="0.05 0.1 0.15 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9"; fi
    for f in $fractions; do rates+="$($PY -c "print(max(10, round($cap * $f / 10) * 10))") "; done
    log "rates: $rates; targets: $targets; $ROUNDS round(s) of ${DURATION}s + ${WARMUP}s warm-up"
    sweep "$targets" "$rates"
    write_meta scenario="$scenario" quick="$QUICK" envs="$ENVS" slo_p99_ms="$SLO_MS" rounds="$ROUNDS" \
        duration_s="$DURATION" warmup_s="$WARMUP" calibrated_max_rps="$cap" \
        esb_blocked="$ESB_BLOCKED" machine="$(machine_json)" "$@"
    $PY "$ROOT/loadtest/report.py" "$OUT"
}

scenario_warm() {
    : "${SLO_MS:=10}"
    ensure_packages
    build
    make_cert
    start_envs "$ENVS"
    start_esb_endpoints 0 || log "esb part blocked: $ESB_BLOCKED"
    compare_warm warm
}

scenario_capacity() {
    : "${SLO_MS:=$((SLEEP_MS * 2 + 10))}"
    ensure_packages
    build
    make_cert
    start_envs "$ENVS"
    local event
    event=$(make_event "$SLEEP_MS")
    if [ "${TARGET:-esb}" = esb ]; then
        start_esb_endpoints "$SLEEP_MS" || log "esb part blocked: $ESB_BLOCKED"
    fi
    set_targets "$event" "$SLEEP_MS"
    local target=${TARGET:-esb}
    if [ "$target" = esb ] && [ -z "${TARGET_ARGS[esb]:-}" ]; then
        log "esb does not serve yet ($ESB_BLOCKED); sweeping the direct path (the upper limit) instead"
        target=direct
    fi
    local cap rates="" f fractions
    cap=$(calibrate)
    log "direct closed-model maximum at sleep_ms=$SLEEP_MS with $ENVS environments: $cap/s"
    if [ "$QUICK" = 1 ]; then fractions="0.5 0.8 0.9 1.0"; else fractions="0.3 0.5 0.6 0.7 0.8 0.85 0.9 0.95 1.0 1.05"; fi
    for f in $fractions; do rates+="$($PY -c "print(max(1, round($cap * $f)))") "; done
    ROUNDS=1 sweep "$target" "$rates"
    write_meta scenario=capacity quick="$QUICK" envs="$ENVS" slo_p99_ms="$SLO_MS" sleep_ms="$SLEEP_MS" \
        target="$target" rounds=1 duration_s="$DURATION" warmup_s="$WARMUP" calibrated_max_rps="$cap" \
        esb_blocked="$ESB_BLOCKED" machine="$(machine_json)"
    $PY "$ROOT/loadtest/report.py" "$OUT"
}

scenario_cold_storm() {
    : "${SLO_MS:=0}"
    build
    make_cert
    local ports; mapfile -t ports < <(free_ports 2); ESB_PORT=${ports[0]} ESB_ADMIN=${ports[1]}
    ESB_URLS=("https://127.0.0.1:$ESB_PORT/cold/bench")
    local functions routes
    functions=$(printf 'functions:\n  cold:\n    runtime: process\n    command: ["%s"]\n    timeout: 30\n    scaling: { max_capacity: 10, idle_timeout: 300, acquire_timeout: 30 }\n' "$BIN/echo")
    routes=$'routes:\n  - path: "/cold/{proxy+}"\n    method: ANY\n    function: cold\n    auth: cognito'
    write_esb_config "$OUT/conf/esb" "$functions" "$routes"
    local status=ok reason=""
    if ! start_esb "$OUT/conf/esb"; then
        status=blocked reason=$ESB_BLOCKED
    elif ! curl -fsS --max-time 5 "http://127.0.0.1:$ESB_ADMIN/admin/pools" >"$OUT/logs/pools-before.json" 2>>"$OUT/logs/loadgen.log"; then
        status=blocked reason="esb serves, but GET /admin/pools on the admin listener does not answer yet"
    fi
    if [ "$status" = ok ]; then
        # The probe request above warmed one environment; restart esb so the storm meets a cold pool.
        stop "$ESB_PID"
        start_esb "$OUT/conf/esb" listen-only || { status=blocked reason=$ESB_BLOCKED; }
    fi
    if [ "$status" = ok ]; then
        curl -fsS --max-time 5 "http://127.0.0.1:$ESB_ADMIN/admin/pools" >"$OUT/logs/pools-before.json"
        local n=100
        [ "$QUICK" = 1 ] && n=100
        lg burst --url "${ESB_URLS[0]}" --connections "$n" --timeout 60 --cores "$LOADGEN_CORE" \
            --login-url "https://127.0.0.1:$ESB_PORT/user/auth/v1" --login-header "x-api-key: $API_KEY" \
            --login-body "$LOGIN_BODY" --label cold-storm --out "$OUT/runs/cold-storm.json" \
            2>>"$OUT/logs/loadgen.log"
        tail -n 1 "$OUT/logs/loadgen.log" >&2
        curl -fsS --max-time 5 "http://127.0.0.1:$ESB_ADMIN/admin/pools" >"$OUT/logs/pools-after.json" || true
    else
        log "cold-storm blocked: $reason"
    fi
    write_meta scenario=cold-storm quick="$QUICK" status="$status" blocked_reason="$reason" \
        max_capacity=10 requests=100 machine="$(machine_json)"
    $PY "$ROOT/loadtest/report.py" "$OUT"
}

# --- docker-warm ----------------------------------------------------------------------------
IMAGE=esb-echo:dev
STATIC_RIE=

# The example image and the static esb-rie that esb bind-mounts into it (rie: injected).
# build-static.sh puts its binaries in ${CARGO_TARGET_DIR:-target}/<target>/release.
build_echo_image() {
    STATIC_RIE=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/${ESB_STATIC_TARGET:-x86_64-unknown-linux-gnu}/release/esb-rie
    if [ "$BUILD" = 1 ]; then
        log "building static esb-rie + echo and the image $IMAGE"
        if ! ESB_ECHO_IMAGE=$IMAGE "$ROOT/scripts/build-echo-image.sh" >/dev/null 2>"$OUT/logs/image-build.log"; then
            log "scripts/build-echo-image.sh failed: $(tail -n 3 "$OUT/logs/image-build.log" | tr '\n' ' ')"
            return 1
        fi
    fi
    if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "no image $IMAGE (run scripts/build-echo-image.sh, or drop --no-build)"; return 1
    fi
    if [ ! -x "$STATIC_RIE" ]; then
        log "no static esb-rie at $STATIC_RIE (run scripts/build-static.sh, or drop --no-build)"; return 1
    fi
}

# Function I as a container of the example image, started by esb at once (min_capacity 1) and
# kept (one environment, never reaped during a run).
docker_function() {
    printf '    runtime: docker\n    image: %s\n    timeout: 30\n    scaling: { min_capacity: 1, max_capacity: 1, idle_timeout: 3600, acquire_timeout: 10 }' "$IMAGE"
}

# Prints the RIE ports of echo0..echoK-1 from a GET /admin/pools answer once every function has
# exactly one idle environment with an address on 127.0.0.1; fails (prints nothing) until then.
pool_ports() {
    $PY - "$1" "$2" <<'EOF'
import json, sys
pools = json.load(open(sys.argv[1]))
by_name = {f["name"]: f for f in pools.get("functions", [])}
ports = []
for i in range(int(sys.argv[2])):
    envs = by_name.get(f"echo{i}", {}).get("environments", [])
    idle = [e for e in envs if e.get("state") == "idle" and e.get("addr")]
    if len(envs) != 1 or len(idle) != 1:
        sys.exit(1)
    host, port = idle[0]["addr"].rsplit(":", 1)
    if host != "127.0.0.1":
        sys.exit(f"echo{i} listens on {idle[0]['addr']}, not on a published loopback port")
    ports.append(port)
print("\n".join(ports))
EOF
}

# Waits (bounded, 120 s) until esb's pool shows every container ready; sets RIE_PORTS.
wait_docker_envs() {
    local k=$1 ports=()
    for _ in $(seq 600); do
        if ! kill -0 "$ESB_PID" 2>/dev/null; then
            ESB_BLOCKED="esb exited while starting its containers: $(grep -m1 -E 'WARN|ERROR' "$OUT/logs/esb.log" | cut -c1-300)"
            return 1
        fi
        if curl -fsS --max-time 2 "http://127.0.0.1:$ESB_ADMIN/admin/pools" >"$OUT/logs/pools-start.json" 2>/dev/null; then
            mapfile -t ports < <(pool_ports "$OUT/logs/pools-start.json" "$k" 2>>"$OUT/logs/loadgen.log" || true)
            if [ "${#ports[@]}" -eq "$k" ]; then RIE_PORTS=("${ports[@]}"); return 0; fi
        fi
        sleep 0.2
    done
    ESB_BLOCKED="esb's pool did not show $k idle containers within 120 s (logs/pools-start.json, logs/esb.log: $(grep -m1 -E 'WARN|ERROR' "$OUT/logs/esb.log" | cut -c1-200))"
    return 1
}

# The warm comparison with the environments in containers that esb starts (runtime: docker):
# esb is started first, and its pool says where the containers' RIE ports are.
scenario_docker_warm() {
    if ! docker info >/dev/null 2>&1; then
        local reason="no Docker engine answers 'docker info'"
        log "docker-warm skipped: $reason"
        write_meta scenario=docker-warm status=skipped blocked_reason="$reason" machine="$(machine_json)"
        $PY "$ROOT/loadtest/report.py" "$OUT"
        return 0
    fi
    : "${SLO_MS:=10}"
    ensure_packages
    build
    build_echo_image
    make_cert
    # Unique per run, so teardown removes exactly this run's containers and no one else's.
    DOCKER_OWNER="esb-loadtest-${STAMP,,}-$$"
    local docker_toml
    docker_toml=$(printf '[docker]\nrie_binary_static = "%s"\nowner = "%s"\nkeep_on_shutdown = false' \
        "$STATIC_RIE" "$DOCKER_OWNER")
    write_esb_echo_conf "$ENVS" 0 docker_function "$docker_toml"
    log "starting esb with $ENVS docker functions (esb.owner=$DOCKER_OWNER)"
    if ! start_esb "$OUT/conf/esb" listen-only || ! wait_docker_envs "$ENVS"; then
        log "docker-warm failed: $ESB_BLOCKED"
        write_meta scenario=docker-warm status=failed blocked_reason="$ESB_BLOCKED" machine="$(machine_json)"
        $PY "$ROOT/loadtest/report.py" "$OUT"
        return 1
    fi
    log "containers ready on 127.0.0.1 ports ${RIE_PORTS[*]}"
    docker ps --filter "label=esb.owner=$DOCKER_OWNER" --no-trunc \
        --format '{{.ID}} {{.Image}} {{.Ports}} {{.Labels}}' >"$OUT/logs/containers.txt"
    warm_envs
    probe_esb || log "esb part blocked: $ESB_BLOCKED"
    # Published loopback ports go through the engine's userland proxy when it runs one.
    local proxied=no port procs
    procs=$(ps -eo args)
    for port in "${RIE_PORTS[@]}"; do
        if grep -q "^[^ ]*docker-proxy .*-host-port $port " <<<"$procs"; then proxied=yes; fi
    done
    compare_warm docker-warm image="$IMAGE" docker_owner="$DOCKER_OWNER" docker_proxy="$proxied" \
        docker_server="$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
}

# Instructions per request (valgrind callgrind) for each server on one keep-alive connection:
# the counters are zeroed after a warm-up, then read after M and after 2M more requests on a new
# connection each; (I(2M) - I(M)) / M leaves out start-up, the TLS handshake and connection setup.
callgrind_one() {
    local name=$1 port=$2 pid=$3
    shift 3
    local targs=("$@")
    local m=200 rate=40
    [ "$QUICK" = 1 ] && m=100
    # Under valgrind servers start slowly.
    for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local once=(--connections 1 --cores "$LOADGEN_CORE" --timeout 30)
    lg run "${targs[@]}" "${once[@]}" --rate "$rate" --warmup 0 --duration 2 --label "$name-warm" \
        --out "$OUT/runs/callgrind-$name-warm.json" 2>>"$OUT/logs/loadgen.log"
    local counts=()
    local secs
    for mult in 1 2; do
        callgrind_control -z "$pid" >/dev/null 2>&1
        secs=$($PY -c "print($m * $mult / $rate)")
        lg run "${targs[@]}" "${once[@]}" --rate "$rate" --warmup 0 --duration "$secs" \
            --label "$name-$mult" --out "$OUT/runs/callgrind-$name-$mult.json" 2>>"$OUT/logs/loadgen.log"
        tail -n 1 "$OUT/logs/loadgen.log" >&2
        callgrind_control -d "$name-$mult" "$pid" >/dev/null 2>&1
        sleep 1
        local file
        file=$(ls -t "$OUT"/callgrind/"$name".out.* | head -n 1)
        counts+=("$(awk '/^(summary|totals):/ {print $2; exit}' "$file")")
    done
    echo "$name ${counts[0]} ${counts[1]} $m" >>"$OUT/callgrind.txt"
    log "$name: I(M)=${counts[0]} I(2M)=${counts[1]} M=$m"
}

scenario_callgrind() {
    ensure_packages
    build
    make_cert
    command -v valgrind >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind >>"$OUT/logs/apt.log" 2>&1
    mkdir -p "$OUT/callgrind"
    : >"$OUT/callgrind.txt"
    start_envs 1
    local vg=(valgrind --tool=callgrind) event
    event=$(make_event 0)
    # The environment itself is not measured; these are the gateways in front of it.
    write_haproxy_conf
    spawn haproxy-vg "${vg[@]}" --callgrind-out-file="$OUT/callgrind/haproxy.out.%p" \
        haproxy -db -f "$OUT/conf/haproxy.cfg"
    callgrind_one haproxy "$HAPROXY_PORT" "$SPAWNED" \
        --url "https://127.0.0.1:$HAPROXY_PORT$INVOKE_PATH" --method POST --body-file "$event"
    stop "$SPAWNED"
    write_nginx_conf
    # One process, so callgrind sees the worker.
    sed -i 's/^daemon off;/daemon off;\nmaster_process off;/' "$OUT/conf/nginx.conf"
    spawn nginx-vg "${vg[@]}" --callgrind-out-file="$OUT/callgrind/nginx.out.%p" \
        /usr/sbin/nginx -c "$OUT/conf/nginx.conf" -p "$OUT/nginx"
    callgrind_one nginx "$NGINX_PORT" "$SPAWNED" \
        --url "https://127.0.0.1:$NGINX_PORT$INVOKE_PATH" --method POST --body-file "$event"
    stop "$SPAWNED"
    if start_esb_endpoints 0; then
        # Logging in under valgrind (argon2) takes longer than any sane timeout: log in to the
        # native esb, whose RSA key (a file, see write_esb_config) the valgrind one shares.
        local token
        token=$(curl -fsS -k --max-time 10 -X POST "https://127.0.0.1:$ESB_PORT/user/auth/v1" \
            -H "x-api-key: $API_KEY" -H 'content-type: application/x-amz-json-1.1' -d "$LOGIN_BODY" |
            $PY -c 'import json,sys; print(json.load(sys.stdin)["AuthenticationResult"]["IdToken"])')
        stop "$ESB_PID"
        spawn esb-vg "${vg[@]}" --callgrind-out-file="$OUT/callgrind/esb.out.%p" \
            "$BIN/esb" serve --config "$OUT/conf/esb/esb.toml"
        callgrind_one esb "$ESB_PORT" "$SPAWNED" --url "${ESB_URLS[0]}" -H "authorization: Bearer $token"
        stop "$SPAWNED"
        spawn esb-noauth-vg "${vg[@]}" --callgrind-out-file="$OUT/callgrind/esb-noauth.out.%p" \
            "$BIN/esb" serve --config "$OUT/conf/esb/esb.toml"
        callgrind_one esb-noauth "$ESB_PORT" "$SPAWNED" --url "${ESB_URLS[0]/\/e0\///n0/}"
        stop "$SPAWNED"
    else
        log "esb part blocked: $ESB_BLOCKED"
    fi
    write_meta scenario=callgrind quick="$QUICK" esb_blocked="$ESB_BLOCKED" machine="$(machine_json)"
    $PY "$ROOT/loadtest/report.py" "$OUT"
}

log "scenario $SCENARIO$([ "$QUICK" = 1 ] && echo ' (quick)'), results in $OUT"
case "$SCENARIO" in
    warm) scenario_warm ;;
    capacity) scenario_capacity ;;
    cold-storm) scenario_cold_storm ;;
    docker-warm) scenario_docker_warm ;;
    callgrind) scenario_callgrind ;;
esac
log "done: $OUT"
