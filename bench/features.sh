#!/usr/bin/env bash
# Cost of a gateway feature: the same Portcullis build as a plain keep-alive proxy and with a
# local rate limit on every request (a limit far above the load, so every request is checked
# and admitted), against one nginx upstream, the proxy alone on SERVER_CPU, wrk and the
# upstream on LOADGEN_CPU. Prints requests/s and proxy CPU µs per request of both, and the
# ratio the performance goal of issue 5 is about (rate-limited / plain, requests per CPU).
#
#   bench/features.sh                 # DUR=8 REPS=3 CONNS=64
#
# Needs: nginx wrk curl taskset. Ports: upstream 18095, Portcullis 18096 (plain) and 18097
# (rate-limited). Everything under RUN=/tmp/pcsfeat, stopped by PID.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
RUN=${RUN:-/tmp/pcsfeat}
DUR=${DUR:-8}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
UP_PORT=${UP_PORT:-18095}
BIN=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

for tool in nginx wrk curl taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool: see bench/README.md" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then (cd "$ROOT" && cargo build --release -p portcullis); fi

rm -rf "$RUN"; mkdir -p "$RUN/tmp" "$RUN/raw"
declare -A PID=() PORT=([plain]=18096 [rate_limited]=18097)
stop_all() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

write_upstream_conf "$RUN/upstream.conf" "$RUN" "$UP_PORT"
for variant in plain rate_limited; do
    limits="" route_limits=""
    if [ "$variant" = rate_limited ]; then
        limits=$'rate_limits:\n  per_ip: { rate: 100000000/s, burst: 100000000, key: client_ip }\n'
        route_limits=", rate_limits: [per_ip]"
    fi
    cat >"$RUN/$variant.yaml" <<EOF
version: 1
listeners: [{ name: l, bind: "127.0.0.1:${PORT[$variant]}" }]
limits: { max_connections: 19000, idle_timeout: 120s }
logging: { access: { path: "off" } }
upstreams:
  up: { targets: ["http://127.0.0.1:$UP_PORT"] }
$limits
routes:
  - { name: all, match: { path: "/{*rest}" }, upstream: up, auth: none$route_limits }
  - { name: root, match: { path: "/" }, upstream: up, auth: none$route_limits }
EOF
done

taskset -c "$LOADGEN_CPU" nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" &
PID[upstream]=$!
for variant in plain rate_limited; do
    # shellcheck disable=SC2016
    taskset -c "$SERVER_CPU" env PORTCULLIS_LOG=warn bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$0" run -c "$1"' \
        "$BIN" "$RUN/$variant.yaml" >"$RUN/$variant.log" 2>&1 &
    PID[$variant]=$!
done
for port in $UP_PORT "${PORT[plain]}" "${PORT[rate_limited]}"; do
    for _ in $(seq 1 100); do curl -fsS --max-time 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
done

OUTF="$RUN/results.tsv"
printf 'variant\trep\trps\tcpu_us_per_req\terrors\n' >"$OUTF"
for rep in $(seq 1 "$REPS"); do
    for variant in plain rate_limited; do
        f="$RUN/raw/${variant}_r$rep.txt"
        c0=$(cpu_ticks "${PID[$variant]}")
        taskset -c "$LOADGEN_CPU" wrk -t1 -c "$CONNS" -d "${DUR}s" "http://127.0.0.1:${PORT[$variant]}/" >"$f" 2>&1 || true
        c1=$(cpu_ticks "${PID[$variant]}")
        awk -v v="$variant" -v r="$rep" -v cpu="$(( (c1 - c0) * TICK_US ))" '
            /requests in/ { req = $1 } /Requests\/sec/ { rps = $2 }
            /Non-2xx/ { bad += $NF } /Socket errors/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
            END { printf "%s\t%s\t%.0f\t%.2f\t%d\n", v, r, rps, (req ? cpu / req : 0), bad }' "$f" | tee -a "$OUTF"
    done
done
awk -F'\t' 'NR > 1 { rps[$1] = rps[$1] " " $3; cpu[$1] = cpu[$1] " " $4; err += $5 }
    '"$MED_AWK"'
    END {
        print "| variant | req/s | CPU µs/req |"; print "|---|---:|---:|"
        printf "| plain proxy | %.0f | %.2f |\n", med(rps["plain"]), med(cpu["plain"])
        printf "| local rate limit on every request | %.0f | %.2f |\n", med(rps["rate_limited"]), med(cpu["rate_limited"])
        printf "\nrequests per CPU, rate-limited / plain: %.3f (goal ≥ 0.95); errors: %d\n", med(cpu["plain"]) / med(cpu["rate_limited"]), err
    }' "$OUTF" | tee "$RUN/summary.md"
