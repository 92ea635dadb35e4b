#!/usr/bin/env bash
# Portcullis benchmark: the upstream directly vs nginx vs Portcullis (HAProxy too with
# WITH_HAPROXY=1), all on 127.0.0.1, measured in one run. Plain bash + the templates in
# conf/. Adapted from the shared baseline harness (direct vs nginx vs HAProxy). See README.md.
#
#   bench/run.sh                        # phases A B C D, ~15 min on 2 cores
#   QUICK=1 bench/run.sh                # 1 rep, 5 s runs, 64 conns (~3 min)
#   PHASES="A C" REPS=5 bench/run.sh    # subset / more repeats
#   TARGETS="direct nginx" bench/run.sh # without Portcullis (no build)
#   bench/run.sh --summarize-only       # rebuild summary.md from $OUT/*.tsv
#   CHAINS="" bench/run.sh              # without the feature-chain rows of phase B
#
# Phase B also measures two more Portcullis instances of the same build (CHAINS, default
# "redis full"): pcs_redis, the plain proxy plus a rate limit kept in Redis (REDIS_URL), and
# pcs_full, the chain SPEC §9 names: TLS, RS256 JWT auth from the verified-token cache, a rate
# limit, the WAF's built-in rules and access logging to a file.
#
# Every server listens on 127.0.0.1 only, writes under $RUN, and is stopped by PID on
# exit. Every load run is bounded in time (wrk -d / h2load -D, plus timeout). System
# services are never touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

if [ -n "${QUICK:-}" ]; then   # a short plumbing/sanity run; explicit settings still win
    REPS=${REPS:-1}; DUR=${DUR:-5}; CONNS=${CONNS:-64}; WARMUP=${WARMUP:-2}; RATE_DUR=${RATE_DUR:-10}
fi

RUN=${RUN:-/tmp/pcsbench}
OUT=${OUT:-$RUN/results}
DUR=${DUR:-10}                     # seconds per closed-loop wrk run
WARMUP=${WARMUP:-3}                # seconds of wrk warm-up per target
REPS=${REPS:-3}
CONNS=${CONNS:-"16 64 256"}
RATE_CONNS=${RATE_CONNS:-64}       # fixed-rate phase: connections
RATE_PER_CONN=${RATE_PER_CONN:-80} # fixed-rate phase: req/s per connection (64*80 = 5120 req/s)
RATE_DUR=${RATE_DUR:-15}
RATE_WARM=${RATE_WARM:-2}
IDLE_CONNS=${IDLE_CONNS:-9000}     # memory phase: idle keep-alive connections (fd hard limit 20000)
LOADGEN_CPU=${LOADGEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
UP_PORT=${UP_PORT:-18080}
NGX_PORT=${NGX_PORT:-18081}
HAP_PORT=${HAP_PORT:-18082}
PCS_PORT=${PCS_PORT:-18083}
PCSR_PORT=${PCSR_PORT:-18084}      # pcs_redis
PCSF_PORT=${PCSF_PORT:-18085}      # pcs_full (HTTPS)
CHAINS=${CHAINS-"redis full"}      # feature-chain instances measured in phase B
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PHASES=${PHASES:-"A B C D"}
OHA=${OHA:-$(command -v oha || true)}
WAIT_FILE=${WAIT_FILE:-}           # optional gate: wait until WAIT_FILE contains WAIT_WORD
WAIT_WORD=${WAIT_WORD:-real}
WAIT_MAX=${WAIT_MAX:-1200}         # seconds, checked every 30 s

# Where cargo puts the release binary: CARGO_TARGET_DIR (relative to the repo) or <repo>/target.
case ${CARGO_TARGET_DIR:-} in
    "") CARGO_OUT=$REPO/target ;;
    /*) CARGO_OUT=$CARGO_TARGET_DIR ;;
    *)  CARGO_OUT=$REPO/$CARGO_TARGET_DIR ;;
esac
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$CARGO_OUT/release/portcullis}
PORTCULLIS_LOG=${PORTCULLIS_LOG:-info}   # info = lifecycle only (listening, shutting down, stopped)

# Targets: "direct" is the upstream itself; every other target is a proxy in front of it.
if [ -z "${TARGETS:-}" ]; then
    TARGETS="direct nginx portcullis"
    [ -z "${WITH_HAPROXY:-}" ] || TARGETS="direct nginx haproxy portcullis"
fi
TARGETS_ALL=$TARGETS
TARGETS_PROXY=${TARGETS_PROXY:-$(for t in $TARGETS_ALL; do [ "$t" = direct ] || printf '%s ' "$t"; done)}
# Phase B only: the feature chains, beside plain Portcullis (same binary, own port).
TARGETS_CHAIN=""
case " $TARGETS_ALL " in *" portcullis "*) for c in $CHAINS; do TARGETS_CHAIN="$TARGETS_CHAIN pcs_$c"; done ;; esac
TARGETS_B="$TARGETS_PROXY$TARGETS_CHAIN"
AUTH_HEADER=""                     # pcs_full's bearer token, made per run
TICK_US=$((1000000 / $(getconf CLK_TCK)))

declare -A PID=()
HOLDERS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }
die() { log "ERROR: $*"; exit 1; }
has_target() { case " $TARGETS_ALL " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

port_of()   { case $1 in direct | upstream) echo "$UP_PORT";; nginx) echo "$NGX_PORT";; haproxy) echo "$HAP_PORT";; portcullis) echo "$PCS_PORT";;
                          pcs_redis) echo "$PCSR_PORT";; pcs_full) echo "$PCSF_PORT";; esac; }
url_of()    { case $1 in pcs_full) echo "https://127.0.0.1:$PCSF_PORT/";; *) echo "http://127.0.0.1:$(port_of "$1")/";; esac; }
# wrk/curl arguments a target needs besides its URL (pcs_full: the bearer token).
hdr_of()    { if [ "$1" = pcs_full ]; then printf '%s\n' -H "Authorization: Bearer $AUTH_HEADER"; fi; }
server_of() { case $1 in direct) echo upstream;; *) echo "$1";; esac; }

# ---------------------------------------------------------------- processes
procs_of() {   # server PID and its direct children (nginx workers; Portcullis has none: one process, its threads inside)
    local p=${PID[$1]:-}
    [ -n "$p" ] || return 0
    echo "$p"
    ps -o pid= --ppid "$p" 2>/dev/null || true
}

cpu_ticks() {  # utime+stime of a server's processes, in clock ticks
    # /proc/PID/stat of a process is the sum over all its threads (live and exited), so a
    # multi-threaded server needs no per-thread walk. comm (field 2) may contain spaces and
    # ')', so strip through the last ") ": the state (field 3) becomes $1, utime (14) $12,
    # stime (15) $13.
    local t=0 p v
    for p in $(procs_of "$1"); do
        v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

rss_kb() {     # summed VmRSS of a server's processes
    local t=0 p v
    for p in $(procs_of "$1"); do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null) || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

cpu_snap() {   # "cpuL_busy cpuL_total cpuS_busy cpuS_total steal_total" from /proc/stat
    awk -v a="cpu$LOADGEN_CPU" -v b="cpu$SERVER_CPU" '
        $1 == a || $1 == b { busy = $2 + $3 + $4 + $7 + $8; tot = busy + $5 + $6 + $9
                             if ($1 == a) { ab = busy; at = tot } else { bb = busy; bt = tot }; st += $9 }
        END { print ab, at, bb, bt, st }' /proc/stat
}

start_server() {   # name cpu cmd...
    local name=$1 cpu=$2; shift 2
    taskset -c "$cpu" "$@" >>"$RUN/$name.stdout" 2>&1 &
    PID[$name]=$!
    echo "$name ${PID[$name]}" >>"$RUN/pids"
}

wait_up() {        # name: wait (max 10 s) until GET / answers "ok"; fail fast if the server died
    local name=$1 i
    for i in $(seq 1 100); do
        local -a hdr; mapfile -t hdr < <(hdr_of "$name")
        [ "$(curl -kfsS --max-time 1 "${hdr[@]}" "$(url_of "$name")" 2>/dev/null)" = "ok" ] && return 0
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            log "$name exited during start-up; last lines of $RUN/$name.stdout:"
            tail -n 20 "$RUN/$name.stdout" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    return 1
}

stop_all() {
    local name p i
    for p in "${HOLDERS[@]:-}"; do
        if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    HOLDERS=()
    for name in "${!PID[@]}"; do
        p=${PID[$name]}
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
        wait "$p" 2>/dev/null || true
    done
    PID=()
}

check_alive() {    # phase: every server must still run; if one is gone, say how, summarize and stop
    local name p rc dead=""
    for name in "${!PID[@]}"; do
        p=${PID[$name]}
        kill -0 "$p" 2>/dev/null && continue
        rc=0; wait "$p" 2>/dev/null || rc=$?
        log "ERROR: $name (PID $p) is gone after phase $1: exit status $rc$([ "$rc" -gt 128 ] && echo " = signal $((rc - 128))"); last lines of $RUN/$name.stdout:"
        tail -n 20 "$RUN/$name.stdout" >&2 || true
        unset "PID[$name]"
        dead="$dead $name"
    done
    [ -z "$dead" ] && return 0
    stop_all
    summarize
    cat "$OUT/summary.md"
    die "server(s)$dead died during phase $1; the numbers of that phase are not valid"
}

render() {         # template -> $RUN/conf/<name>
    sed -e "s#@RUN@#$RUN#g" -e "s#@UP_PORT@#$UP_PORT#g" \
        -e "s#@NGX_PORT@#$NGX_PORT#g" -e "s#@HAP_PORT@#$HAP_PORT#g" -e "s#@PCS_PORT@#$PCS_PORT#g" \
        -e "s#@PCSR_PORT@#$PCSR_PORT#g" -e "s#@PCSF_PORT@#$PCSF_PORT#g" -e "s#@REDIS_URL@#$REDIS_URL#g" \
        "$HERE/conf/$1" >"$RUN/conf/$1"
}

# pcs_full's identity provider and certificate, made per run with openssl: an RSA key whose
# JWKS the upstream nginx serves, one RS256 token valid until 2100 (so it is verified once and
# then served from the token cache, as in steady traffic), and an ECDSA P-256 certificate.
make_chain_files() {
    local n head body sig
    b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
    mkdir -p "$RUN/www"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUN/idp.pem" 2>/dev/null
    n=$(openssl rsa -in "$RUN/idp.pem" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
    printf '{"keys":[{"kty":"RSA","kid":"bench","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$n" >"$RUN/www/jwks.json"
    head=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
    body=$(printf '{"iss":"http://127.0.0.1:%s","aud":"api","sub":"bench-user","scope":"orders.read","exp":4102444800}' "$UP_PORT" | b64url)
    sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign "$RUN/idp.pem" -binary | b64url)
    AUTH_HEADER="$head.$body.$sig"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
        -keyout "$RUN/conf/key.pem" -out "$RUN/conf/cert.pem" 2>/dev/null
}

start_portcullis() { # name config: same shape as `taskset -c $SERVER_CPU portcullis run -c FILE`
    # The bash in between only raises the soft fd limit to the hard one (as nginx's
    # worker_rlimit_nofile does) and then execs, so the PID is Portcullis's own.
    # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
    start_server "$1" "$SERVER_CPU" env PORTCULLIS_LOG="$PORTCULLIS_LOG" bash -c \
        'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$0" run -c "$1"' \
        "$PORTCULLIS_BIN" "$RUN/conf/$2"
}

start_all() {
    : >"$RUN/pids"
    mkdir -p "$RUN/conf" "$RUN/tmp"
    local t started="" threads
    # The upstream always runs: it is "direct" and what every proxy forwards to.
    render upstream.nginx.conf
    case " $TARGETS_CHAIN " in *" pcs_full "*) make_chain_files ;; esac
    start_server upstream "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/upstream.startup.log" -c "$RUN/conf/upstream.nginx.conf"
    wait_up upstream "$UP_PORT" || die "upstream did not come up (see $RUN/upstream.*)"
    started="upstream=${PID[upstream]}"
    for t in $TARGETS_B; do
        case $t in
            nginx)
                render proxy.nginx.conf
                start_server nginx "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/nginx-proxy.startup.log" -c "$RUN/conf/proxy.nginx.conf" ;;
            haproxy)
                render haproxy.cfg
                start_server haproxy "$SERVER_CPU" haproxy -db -f "$RUN/conf/haproxy.cfg" ;;
            portcullis) render portcullis.yaml; start_portcullis portcullis portcullis.yaml ;;
            pcs_redis) render portcullis-redis.yaml; start_portcullis pcs_redis portcullis-redis.yaml ;;
            pcs_full) render portcullis-full.yaml; start_portcullis pcs_full portcullis-full.yaml ;;
            *) die "unknown target '$t' (known: direct nginx portcullis haproxy pcs_redis pcs_full)" ;;
        esac
        wait_up "$t" || die "$t did not come up (see $RUN/$t.stdout and $RUN/*.log)"
        started="$started $t=${PID[$t]}"
    done
    log "servers up: $started (all on CPU $SERVER_CPU)"
    if has_target portcullis; then
        threads=$(awk '/^Threads:/ { print $2 }' "/proc/${PID[portcullis]}/status")
        log "portcullis: $threads threads, affinity $(taskset -p -c "${PID[portcullis]}" | sed 's/.*: //')"
        echo "portcullis threads at start: $threads" >>"$OUT/env.txt"
    fi
}

pin_upstream() {   # re-pin every thread of the upstream's processes
    local p
    for p in $(procs_of upstream); do taskset -a -p -c "$1" "$p" >/dev/null; done
}

# ---------------------------------------------------------------- parsing
parse_wrk() {      # -> rps p50_us p90_us p99_us requests socket_errors non2xx
    awk '
    function us(x) {
        if (x ~ /us$/) { sub(/us$/, "", x); return x + 0 }
        if (x ~ /ms$/) { sub(/ms$/, "", x); return x * 1000 }
        if (x ~ /m$/)  { sub(/m$/, "", x);  return x * 60000000 }
        if (x ~ /s$/)  { sub(/s$/, "", x);  return x * 1000000 }
        return x + 0
    }
    $1 == "50%" { p50 = us($2) }  $1 == "90%" { p90 = us($2) }  $1 == "99%" { p99 = us($2) }
    /requests in/              { req = $1 }
    /^Requests\/sec:/          { rps = $2 }
    /Socket errors:/           { s = $0; gsub(/[^0-9]+/, " ", s); n = split(s, a, " "); for (i = 1; i <= n; i++) err += a[i] }
    /Non-2xx or 3xx responses/ { non2xx = $NF }
    END { printf "%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\n", rps, p50, p90, p99, req, err, non2xx }' "$1"
}

pctl_from_list() { # stdin: one latency (us) per line, sorted ascending -> n p50 p90 p99 p999 max
    awk '{ v[NR] = $1 }
         function q(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return v[i] }
         END { if (NR == 0) { print "0\t0\t0\t0\t0\t0"; exit }
               printf "%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", NR, q(0.50), q(0.90), q(0.99), q(0.999), v[NR] }'
}

# ---------------------------------------------------------------- phases
# Phase A/B row: phase target conns rep rps p50 p90 p99 requests errors non2xx
#                proxy_cpu_s upstream_cpu_s proxy_us_per_req cpuL_busy% cpuS_busy% steal%
wrk_once() {
    local phase=$1 rep=$2 target=$3 c=$4 f srv s0 s1 p0 p1 u0 u1 parsed req pcpu ucpu uspr busy
    local -a hdr; mapfile -t hdr < <(hdr_of "$target")
    srv=$(server_of "$target")
    f="$OUT/raw/wrk_${phase}_${target}_c${c}_r${rep}.txt"
    s0=$(cpu_snap); u0=$(cpu_ticks upstream); p0=0
    [ "$target" = direct ] || p0=$(cpu_ticks "$srv")
    timeout $((DUR + 30)) taskset -c "$LOADGEN_CPU" \
        wrk -t1 -c "$c" -d "${DUR}s" --latency --timeout 5s "${hdr[@]}" "$(url_of "$target")" >"$f" 2>&1 || true
    u1=$(cpu_ticks upstream); p1=0
    [ "$target" = direct ] || p1=$(cpu_ticks "$srv")
    s1=$(cpu_snap)
    parsed=$(parse_wrk "$f")
    req=$(echo "$parsed" | cut -f5)
    pcpu=$(( (p1 - p0) * TICK_US )); ucpu=$(( (u1 - u0) * TICK_US ))
    [ "$target" = direct ] && pcpu=$ucpu      # direct: the upstream *is* the server under test
    uspr=$(awk -v a="$pcpu" -v r="$req" 'BEGIN { printf "%.2f", (r > 0 ? a / r : 0) }')
    busy=$(awk -v x="$s0" -v y="$s1" 'BEGIN { split(x, a, " "); split(y, b, " ")
        lb = b[1] - a[1]; lt = b[2] - a[2]; sb = b[3] - a[3]; st = b[4] - a[4]; stl = b[5] - a[5]
        printf "%.0f\t%.0f\t%.1f", (lt ? 100 * lb / lt : 0), (st ? 100 * sb / st : 0), ((lt + st) ? 100 * stl / (lt + st) : 0) }')
    printf '%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%s\t%s\n' "$phase" "$target" "$c" "$rep" "$parsed" \
        "$(awk -v a="$pcpu" 'BEGIN { print a / 1e6 }')" "$(awk -v a="$ucpu" 'BEGIN { print a / 1e6 }')" "$uspr" "$busy" \
        | tee -a "$OUT/phase_$phase.tsv"
}

tsv_header() {
    printf 'phase\ttarget\tconns\trep\trps\tp50_us\tp90_us\tp99_us\trequests\tsock_errors\tnon2xx\tproxy_cpu_s\tupstream_cpu_s\tproxy_us_per_req\tloadgen_cpu_busy_pct\tserver_cpu_busy_pct\tsteal_pct\n' >"$OUT/phase_$1.tsv"
}

warmup() {
    local t
    for t in "$@"; do
        local -a hdr; mapfile -t hdr < <(hdr_of "$t")
        timeout $((WARMUP + 20)) taskset -c "$LOADGEN_CPU" wrk -t1 -c 64 -d "${WARMUP}s" "${hdr[@]}" "$(url_of "$t")" >/dev/null 2>&1 || true
    done
}

phase_A() {  # closed loop; all servers on SERVER_CPU, wrk on LOADGEN_CPU
    log "phase A: closed-loop wrk, servers on CPU $SERVER_CPU, wrk on CPU $LOADGEN_CPU, ${DUR}s x $REPS reps, conns: $CONNS"
    tsv_header A
    # shellcheck disable=SC2086  # word lists on purpose
    warmup $TARGETS_ALL
    local rep c t
    for rep in $(seq 1 "$REPS"); do
        for c in $CONNS; do
            for t in $TARGETS_ALL; do wrk_once A "$rep" "$t" "$c" >/dev/null; done
        done
    done
}

phase_B() {  # proxy alone on SERVER_CPU; upstream moved next to wrk on LOADGEN_CPU
    [ -n "${TARGETS_PROXY// /}" ] || { log "phase B: skipped (no proxy target)"; return 0; }
    log "phase B: proxy-isolated, proxy on CPU $SERVER_CPU, upstream+wrk on CPU $LOADGEN_CPU, ${DUR}s x $REPS reps, conns: $CONNS"
    tsv_header B
    pin_upstream "$LOADGEN_CPU"
    # shellcheck disable=SC2086
    warmup $TARGETS_B
    local rep c t
    for rep in $(seq 1 "$REPS"); do
        for c in $CONNS; do
            for t in $TARGETS_B; do wrk_once B "$rep" "$t" "$c" >/dev/null; done
        done
    done
    pin_upstream "$SERVER_CPU"
}

# Phase C row: tool target rep target_rps achieved_rps n p50 p90 p99 p999 max errors
phase_C() {  # fixed (open-ish loop) rate; layout as phase A
    local rate=$((RATE_CONNS * RATE_PER_CONN)) rep t port f lg achieved pct errs
    log "phase C: fixed rate $rate req/s over $RATE_CONNS conns, ${RATE_DUR}s (+${RATE_WARM}s warm-up), $REPS reps"
    printf 'tool\ttarget\trep\ttarget_rps\tachieved_rps\tn\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\terrors\n' >"$OUT/phase_C.tsv"
    for rep in $(seq 1 "$REPS"); do
        for t in $TARGETS_ALL; do
            port=$(port_of "$t")
            f="$OUT/raw/h2load_${t}_r${rep}.txt"; lg="$RUN/h2load_${t}_r${rep}.log"
            rm -f "$lg"
            timeout $((RATE_DUR + RATE_WARM + 30)) taskset -c "$LOADGEN_CPU" \
                h2load --h1 -t1 -c "$RATE_CONNS" --rps "$RATE_PER_CONN" -D "$RATE_DUR" --warm-up-time "$RATE_WARM" \
                --log-file "$lg" "http://127.0.0.1:$port/" >"$f" 2>&1 || true
            # h2load logs only the main-duration requests (warm-up excluded): start µs, status, duration µs
            pct=$(awk -F'\t' '$2 == 200 { print $3 }' "$lg" 2>/dev/null | sort -n | pctl_from_list)
            achieved=$(awk -F'\t' 'NR == 1 || $1 < m { m = $1 } $1 > M { M = $1 } END { printf "%.0f", (M > m ? NR / ((M - m) / 1e6) : 0) }' "$lg" 2>/dev/null)
            errs=$(awk -F'\t' '$2 != 200' "$lg" 2>/dev/null | wc -l)
            printf 'h2load\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$rate" "$achieved" "$pct" "$errs" >>"$OUT/phase_C.tsv"
            [ -n "${KEEP_LOGS:-}" ] || rm -f "$lg"
            if [ -n "$OHA" ]; then
                f="$OUT/raw/oha_${t}_r${rep}.json"
                timeout $((RATE_DUR + 30)) taskset -c "$LOADGEN_CPU" \
                    "$OHA" -z "${RATE_DUR}s" -c "$RATE_CONNS" -q "$rate" --latency-correction --no-tui \
                    --output-format json "http://127.0.0.1:$port/" >"$f" 2>"$OUT/raw/oha_${t}_r${rep}.stderr" || true
                # requests still in flight at the deadline are reported as errors by oha; not counted here
                jq -r --arg t "$t" --arg rep "$rep" --arg rate "$rate" '
                    [ "oha", $t, $rep, $rate, (.summary.requestsPerSec | round),
                      ((.statusCodeDistribution // {}) | to_entries | map(.value) | add // 0),
                      (.latencyPercentiles.p50 * 1e6 | round), (.latencyPercentiles.p90 * 1e6 | round),
                      (.latencyPercentiles.p99 * 1e6 | round), (.latencyPercentiles["p99.9"] * 1e6 | round),
                      (.summary.slowest * 1e6 | round),
                      (((.errorDistribution // {}) | to_entries | map(select(.key != "aborted due to deadline") | .value) | add // 0)
                       + ((.statusCodeDistribution // {}) | to_entries | map(select(.key != "200") | .value) | add // 0)) ]
                    | @tsv' "$f" >>"$OUT/phase_C.tsv" 2>>"$OUT/run.log" || log "could not parse $f"
            fi
        done
    done
}

# Phase D row: target server_pids idle_rss_kb conns_held rss_with_conns_kb delta_kb bytes_per_conn conns_opened open_s closed_by_server
#   conns_held = client sockets still ESTABLISHED with the response waiting unread in them at the
#   moment RSS is read, i.e. connections the server accepted, answered and keeps open.
answered() {       # port -> client-side sockets to it that are established and hold an unread response
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | awk '$1 > 0 { n++ } END { print n + 0 }'
}

phase_D() {
    local t srv port before after held holder i t0 opened closed
    log "phase D: memory, RSS idle and with $IDLE_CONNS idle keep-alive connections"
    printf 'target\tserver_pids\tidle_rss_kb\tconns_held\trss_with_conns_kb\tdelta_kb\tbytes_per_conn\tconns_opened\topen_s\tclosed_by_server\n' >"$OUT/phase_D.tsv"
    for t in $TARGETS_ALL; do
        srv=$(server_of "$t"); port=$(port_of "$t")
        sleep 1
        before=$(rss_kb "$srv")
        rm -f "$RUN/hold.$port"
        t0=$(date +%s)
        (   # opens N connections, sends one request on each, then execs into sleep so the
            # holder is a single PID that owns all the sockets (bounded by the sleep)
            ulimit -n $((IDLE_CONNS + 64))
            n=0
            for ((i = 0; i < IDLE_CONNS; i++)); do
                exec {fd}<>"/dev/tcp/127.0.0.1/$port" || break
                printf 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n' >&"$fd"
                n=$((n + 1))
            done
            echo "$n" >"$RUN/hold.$port"
            exec sleep 90
        ) 2>>"$OUT/run.log" &
        holder=$!; HOLDERS+=("$holder")
        for i in $(seq 1 900); do [ -s "$RUN/hold.$port" ] && break; sleep 0.2; done   # opening: max 180 s
        opened=$(cat "$RUN/hold.$port" 2>/dev/null || echo 0)
        for i in $(seq 1 60); do [ "$(answered "$port")" -ge "$opened" ] && break; sleep 0.5; done   # answers: max 30 s
        sleep 2
        after=$(rss_kb "$srv")
        held=$(answered "$port")
        closed=$(ss -Htn state close-wait "( dport = :$port )" 2>/dev/null | wc -l)   # the server closed them
        kill -TERM "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(procs_of "$srv" | tr '\n' ',' | tr -d ' ' | sed 's/,$//')" \
            "$before" "$held" "$after" "$((after - before))" \
            "$(awk -v d=$((after - before)) -v n="$held" 'BEGIN { printf "%.0f", (n > 0 ? d * 1024 / n : 0) }')" \
            "$opened" "$(($(date +%s) - t0))" "$closed" >>"$OUT/phase_D.tsv"
        log "phase D: $t idle ${before} KiB; $opened conns opened, $held answered and held, $closed closed by the server; ${after} KiB"
        sleep 2
    done
}

# ---------------------------------------------------------------- summary
awk_med() {    # awk library: med() of a comma list, add() to one; mawk-compatible (no asort)
    cat <<'AWK'
function med(str,   n, a, i, j, x) {
    n = split(str, a, ",")
    for (i = 2; i <= n; i++) { x = a[i] + 0; j = i - 1; while (j > 0 && a[j] + 0 > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
    if (n == 0) return 0
    return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(k, col, v) { V[k, col] = (V[k, col] == "" ? v : V[k, col] "," v) }
function ratio(x, y) { return (y > 0 ? sprintf("%.2f", x / y) : "n/a") }
AWK
}

medians() {    # phase_X.tsv mode(AB|C) -> one tab-separated median row per key, in first-seen order
    # AB: target conns rps p50 p99 us_per_req server_busy loadgen_busy errors runs
    # C:  tool target achieved p50 p90 p99 p999 errors runs
    awk -F'\t' -v mode="$2" -f <(awk_med) -f <(cat <<'AWK'
NR == 1 { next }
mode == "AB" {
    k = $2 "\t" $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    add(k, "rps", $5); add(k, "p50", $6); add(k, "p99", $8); add(k, "err", $10 + $11)
    add(k, "uspr", $14); add(k, "lb", $15); add(k, "sb", $16); cnt[k]++
}
mode == "C" {
    k = $1 "\t" $2
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    add(k, "ach", $5); add(k, "p50", $7); add(k, "p90", $8); add(k, "p99", $9); add(k, "p999", $10); add(k, "err", $12); cnt[k]++
}
END {
    for (i = 1; i <= nk; i++) {
        k = order[i]
        if (mode == "AB")
            printf "%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\t%d\t%d\n", k, med(V[k, "rps"]), med(V[k, "p50"]), med(V[k, "p99"]),
                med(V[k, "uspr"]), med(V[k, "sb"]), med(V[k, "lb"]), med(V[k, "err"]), cnt[k]
        else
            printf "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\n", k, med(V[k, "ach"]), med(V[k, "p50"]), med(V[k, "p90"]),
                med(V[k, "p99"]), med(V[k, "p999"]), med(V[k, "err"]), cnt[k]
    }
}
AWK
) "$1"
}

table_A() {    # medians_A.tsv (read twice: direct first)
    awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
FNR == NR { if ($1 == "direct") d[$2] = $3; next }
{ printf "| %s | %s | %.0f | %s | %.0f | %.0f | %.2f | %.0f | %.0f | %d |\n", $1, $2, $3, ratio($3, d[$2]), $4, $5, $6, $7, $8, $9 }
AWK
) "$1" "$1"
}

table_B() {
    awk -F'\t' '{ printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %d |\n", $1, $2, $3, $4, $5, $6, ($6 > 0 ? 1e6 / $6 : 0), $7, $8, $9 }' "$1"
}

table_C() {    # medians_C.tsv (read twice: direct first); added = target - direct, same tool
    awk -F'\t' 'FNR == NR { if ($2 == "direct") { d50[$1] = $4; d99[$1] = $6 } next }
        { printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d |\n", $1, $2, $3, $4, $5, $6, $7, $4 - d50[$1], $6 - d99[$1], $8 }' "$1" "$1"
}

compare_AB() { # phase medians.tsv -> portcullis vs nginx rows per conns
    awk -F'\t' -v ph="$1" -f <(awk_med) -f <(cat <<'AWK'
{ k = $1 SUBSEP $2; rps[k] = $3; p99[k] = $5; us[k] = $6; err[k] = $9; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
END {
    for (i = 1; i <= n; i++) {
        c = order[i]; a = "nginx" SUBSEP c; b = "portcullis" SUBSEP c
        if (!(a in rps) || !(b in rps)) continue
        printf "| %s | %s | %.0f | %.0f | %s | %.2f | %.2f | %s | %.0f | %.0f | %d / %d |\n", ph, c, rps[a], rps[b], ratio(rps[b], rps[a]),
            us[a], us[b], ratio(us[b], us[a]), p99[a], p99[b], err[a], err[b]
    }
}
AWK
) "$2"
}

compare_C() {
    awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
{ k = $1 SUBSEP $2; p50[k] = $4; p99[k] = $6; err[k] = $8; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
END {
    for (i = 1; i <= n; i++) {
        t = order[i]; d = t SUBSEP "direct"; a = t SUBSEP "nginx"; b = t SUBSEP "portcullis"
        if (!(d in p50) || !(a in p50) || !(b in p50)) continue
        printf "| %s | %.0f | %.0f | %.0f | %s | %.0f | %.0f | %.0f | %s | %d / %d |\n", t,
            p50[d], p50[a] - p50[d], p50[b] - p50[d], ratio(p50[b] - p50[d], p50[a] - p50[d]),
            p99[d], p99[a] - p99[d], p99[b] - p99[d], ratio(p99[b] - p99[d], p99[a] - p99[d]), err[a], err[b]
    }
}
AWK
) "$1"
}

compare_D() {
    awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
NR > 1 { idle[$1] = $3; held[$1] = $4; withc[$1] = $5; per[$1] = $7 }
END {
    if (!("nginx" in idle) || !("portcullis" in idle)) exit
    printf "| idle RSS KiB | %d | %d | %s |\n", idle["nginx"], idle["portcullis"], ratio(idle["portcullis"], idle["nginx"])
    printf "| RSS with idle conns KiB | %d | %d | %s |\n", withc["nginx"], withc["portcullis"], ratio(withc["portcullis"], withc["nginx"])
    printf "| connections held | %d | %d | |\n", held["nginx"], held["portcullis"]
    printf "| bytes per idle connection | %d | %d | %s |\n", per["nginx"], per["portcullis"], ratio(per["portcullis"], per["nginx"])
}
AWK
) "$1"
}

goals() {      # PASS/FAIL per goal from the medians; prints table rows
    local mb="$OUT/medians_B.tsv" mc="$OUT/medians_C.tsv" d="$OUT/phase_D.tsv"
    if [ -s "$mb" ]; then
        awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
{ k = $1 SUBSEP $2; us[k] = $6; err[k] = $9; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
END {
    for (i = 1; i <= n; i++) {
        c = order[i]; a = "nginx" SUBSEP c; b = "portcullis" SUBSEP c
        if (!(a in us) || !(b in us)) continue
        v = (us[a] > 0 && us[b] <= 0.9 * us[a]) ? "PASS" : "FAIL"
        if (err[b] > 0) v = "FAIL (" err[b] " errors)"
        printf "| proxy CPU µs/req, proxy alone on a core (B), %s conns | ≤ 0.90 × nginx | %.2f | %.2f | %s | %s |\n", c, us[a], us[b], ratio(us[b], us[a]), v
    }
}
AWK
) "$mb"
        # The chains: requests per proxy CPU, as a share of plain Portcullis (Redis limit) or of
        # plain nginx (the full chain), = the reciprocal ratio of CPU µs per request.
        awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
{ k = $1 SUBSEP $2; us[k] = $6; err[k] = $9; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
function row(what, goal, base, chain, c,   a, b, r, v) {
    a = base SUBSEP c; b = chain SUBSEP c
    if (!(a in us) || !(b in us) || us[b] <= 0) return
    r = us[a] / us[b]; v = (r >= goal) ? "PASS" : "FAIL"
    if (err[b] > 0) v = "FAIL (" err[b] " errors)"
    printf "| %s (B), %s conns | ≥ %.2f × %s per CPU | %.2f | %.2f | %.3f | %s |\n", what, c, goal, base, us[a], us[b], r, v
}
END {
    for (i = 1; i <= n; i++) {
        row("rate limit in Redis: requests per proxy CPU vs plain Portcullis", 0.85, "portcullis", "pcs_redis", order[i])
        row("full chain (TLS, cached JWT, rate limit, WAF, access log) vs nginx plain", 0.80, "nginx", "pcs_full", order[i])
    }
}
AWK
) "$mb"
    else
        echo "| proxy CPU µs/req (B) | ≤ 0.90 × nginx | | | | not measured |"
    fi
    if [ -s "$mc" ]; then
        awk -F'\t' -f <(awk_med) -f <(cat <<'AWK'
{ k = $1 SUBSEP $2; p99[k] = $6; err[k] = $8; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
END {
    for (i = 1; i <= n; i++) {
        t = order[i]; d = t SUBSEP "direct"; a = t SUBSEP "nginx"; b = t SUBSEP "portcullis"
        if (!(d in p99) || !(a in p99) || !(b in p99)) continue
        x = p99[a] - p99[d]; y = p99[b] - p99[d]
        v = (y <= x) ? "PASS" : "FAIL"
        if (x <= 0) v = "INCONCLUSIVE (nginx adds no p99 over direct: noise, rerun)"
        if (err[b] > 0) v = "FAIL (" err[b] " errors)"
        if (t != "h2load") v = "(" v ", cross-check)"
        printf "| added p99 µs at the fixed rate (C, %s) | ≤ nginx | %.0f | %.0f | %s | %s |\n", t, x, y, ratio(y, x), v
    }
}
AWK
) "$mc"
    else
        echo "| added p99 at the fixed rate (C) | ≤ nginx | | | | not measured |"
    fi
    if [ -s "$d" ]; then
        awk -F'\t' -v want="$IDLE_CONNS" -f <(awk_med) -f <(cat <<'AWK'
NR > 1 { idle[$1] = $3; held[$1] = $4; per[$1] = $7; closed[$1] = $10 + 0 }
END {
    if (!("portcullis" in per)) { print "| bytes per idle keep-alive connection (D) | ≤ 4096 | | | | not measured |"; exit }
    v = (per["portcullis"] <= 4096) ? "PASS" : "FAIL"
    if (held["portcullis"] < want) v = "INVALID (" held["portcullis"] " of " want " conns held, " closed["portcullis"] " closed by the server)"
    printf "| bytes per idle keep-alive connection (D, %d conns) | ≤ 4096 | %s | %d | %s | %s |\n", held["portcullis"],
        ("nginx" in per ? per["nginx"] : "–"), per["portcullis"], ("nginx" in per ? ratio(per["portcullis"], per["nginx"]) : "n/a"), v
    printf "| idle RSS KiB (D) | < 30 MiB | %s | %d | %s | %s |\n", ("nginx" in idle ? idle["nginx"] : "–"), idle["portcullis"],
        ("nginx" in idle ? ratio(idle["portcullis"], idle["nginx"]) : "n/a"), (idle["portcullis"] + 0 > 0 && idle["portcullis"] < 30720 ? "PASS" : "FAIL")
}
AWK
) "$d"
    else
        echo "| bytes per idle keep-alive connection (D) | ≤ 4096 | | | | not measured |"
    fi
}

summarize() {
    local s="$OUT/summary.md" ph g pass fail
    rm -f "$OUT"/medians_*.tsv
    for ph in A B; do
        if [ -s "$OUT/phase_$ph.tsv" ]; then medians "$OUT/phase_$ph.tsv" AB >"$OUT/medians_$ph.tsv"; fi
    done
    if [ -s "$OUT/phase_C.tsv" ]; then medians "$OUT/phase_C.tsv" C >"$OUT/medians_C.tsv"; fi
    {
        echo "# Portcullis benchmark: summary (medians of $REPS runs)"
        echo
        sed -n '1,40p' "$OUT/env.txt" 2>/dev/null | sed 's/^/    /'
        echo
        if has_target portcullis && has_target nginx; then
            g=$(goals)
            pass=$(grep -c '| PASS |' <<<"$g" || true); fail=$(grep -Ec '\| (FAIL|INVALID)[^|]*\|$' <<<"$g" || true)
            echo "## Goals: Portcullis vs nginx, same run ($pass pass, $fail fail)"
            echo
            echo "| goal | target | nginx | portcullis | ratio p/n | verdict |"
            echo "|---|---|---:|---:|---:|---|"
            echo "$g"
            echo
            echo "## Portcullis vs nginx (ratio = portcullis / nginx; below 1 is better for CPU, latency and memory, above 1 for req/s)"
            echo
            if [ -s "$OUT/medians_A.tsv" ] || [ -s "$OUT/medians_B.tsv" ]; then
                echo "| phase | conns | nginx req/s | portcullis req/s | ratio | nginx CPU µs/req | portcullis CPU µs/req | ratio | nginx p99 µs | portcullis p99 µs | errors n / p |"
                echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                for ph in A B; do
                    if [ -s "$OUT/medians_$ph.tsv" ]; then compare_AB "$ph" "$OUT/medians_$ph.tsv"; fi
                done
                echo
            fi
            if [ -s "$OUT/medians_C.tsv" ]; then
                echo "Fixed rate (C), added latency = target − direct:"
                echo
                echo "| tool | direct p50 µs | nginx +p50 | portcullis +p50 | ratio | direct p99 µs | nginx +p99 | portcullis +p99 | ratio | errors n / p |"
                echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                compare_C "$OUT/medians_C.tsv"
                echo
            fi
            if [ -s "$OUT/phase_D.tsv" ]; then
                echo "Memory (D):"
                echo
                echo "| | nginx | portcullis | ratio |"
                echo "|---|---:|---:|---:|"
                compare_D "$OUT/phase_D.tsv"
                echo
            fi
        fi
        if [ -s "$OUT/medians_A.tsv" ]; then
            echo "## A. Closed loop (wrk -t1, ${DUR}s): servers share CPU $SERVER_CPU, wrk on CPU $LOADGEN_CPU"
            echo
            echo "| target | conns | req/s | ratio vs direct | p50 µs | p99 µs | server CPU µs/req | server CPU busy % | loadgen CPU busy % | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            table_A "$OUT/medians_A.tsv"
            echo
        fi
        if [ -s "$OUT/medians_B.tsv" ]; then
            echo "## B. Proxy alone on CPU $SERVER_CPU (upstream + wrk share CPU $LOADGEN_CPU)"
            echo
            echo "| target | conns | req/s | p50 µs | p99 µs | proxy CPU µs/req | proxy req/s per busy core | proxy CPU busy % | other CPU busy % | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            table_B "$OUT/medians_B.tsv"
            echo
        fi
        if [ -s "$OUT/medians_C.tsv" ]; then
            echo "## C. Fixed rate ($((RATE_CONNS * RATE_PER_CONN)) req/s target, $RATE_CONNS conns, ${RATE_DUR}s), layout as A"
            echo
            echo "| tool | target | achieved req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | errors |"
            echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            table_C "$OUT/medians_C.tsv"
            echo
        fi
        if [ -s "$OUT/phase_D.tsv" ]; then
            echo "## D. Memory (VmRSS of the server's processes; kernel socket buffers not included)"
            echo
            echo "| target | idle RSS KiB | conns held | RSS with conns KiB | delta KiB | bytes/conn | conns opened | closed by server | opening + reading s |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $3, $4, $5, $6, $7, $8, $10, $9 }' "$OUT/phase_D.tsv"
            echo
        fi
        echo "Raw data: $OUT/phase_*.tsv (one row per run), $OUT/raw/ (tool output), $OUT/run.log."
    } >"$s"
    log "summary: $s"
}

env_info() {
    {
        echo "date:        $(date -u +%FT%TZ)"
        echo "host:        $(nproc) CPUs, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
        echo "kernel:      $(uname -r)"
        echo "targets:     $TARGETS_ALL"
        echo "nginx:       $(nginx -v 2>&1 | sed 's/.*: //')"
        if has_target haproxy; then echo "haproxy:     $(haproxy -v 2>&1 | head -1)"; fi
        if has_target portcullis; then
            echo "portcullis:  $PORTCULLIS_BIN (built $(date -u -r "$PORTCULLIS_BIN" +%FT%TZ); repo $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'))"
        fi
        echo "wrk:         $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
        echo "h2load:      $(h2load --version 2>&1 | head -1)"
        echo "oha:         $(if [ -n "$OHA" ]; then "$OHA" --version 2>&1 | head -1; else echo 'not used'; fi)"
        echo "pinning:     load generator on CPU $LOADGEN_CPU; servers on CPU $SERVER_CPU (phase B: upstream moved to CPU $LOADGEN_CPU)"
        echo "workers:     1 nginx worker (upstream), 1 nginx worker (proxy)$(if has_target portcullis; then echo '; portcullis: one process, runtime sized to its 1 pinned core'; fi)"
        echo "params:      DUR=${DUR}s REPS=$REPS CONNS='$CONNS' RATE=$((RATE_CONNS * RATE_PER_CONN))/s over $RATE_CONNS conns IDLE_CONNS=$IDLE_CONNS"
        echo "loadavg:     $(cat /proc/loadavg)"
    } >"$OUT/env.txt"
}

save_params() {    # so that --summarize-only labels the tables with the run's parameters
    printf 'REPS=%q\nDUR=%q\nCONNS=%q\nRATE_CONNS=%q\nRATE_PER_CONN=%q\nRATE_DUR=%q\nIDLE_CONNS=%q\nLOADGEN_CPU=%q\nSERVER_CPU=%q\nTARGETS_ALL=%q\n' \
        "$REPS" "$DUR" "$CONNS" "$RATE_CONNS" "$RATE_PER_CONN" "$RATE_DUR" "$IDLE_CONNS" "$LOADGEN_CPU" "$SERVER_CPU" "$TARGETS_ALL" >"$OUT/params.env"
}

wait_gate() {
    [ -n "$WAIT_FILE" ] || return 0
    local waited=0
    until grep -qw "$WAIT_WORD" "$WAIT_FILE" 2>/dev/null; do
        [ "$waited" -ge "$WAIT_MAX" ] && die "gave up waiting for '$WAIT_WORD' in $WAIT_FILE after ${WAIT_MAX}s"
        log "waiting for '$WAIT_WORD' in $WAIT_FILE (${waited}s so far)"
        sleep 30; waited=$((waited + 30))
    done
    log "gate passed: $WAIT_FILE contains '$WAIT_WORD'"
}

check_tools() {    # every tool at once, with the install command
    local tool tools="nginx wrk h2load curl jq taskset ss timeout" pkgs="nginx wrk nghttp2-client curl jq" missing=()
    if has_target haproxy; then tools="$tools haproxy"; pkgs="$pkgs haproxy"; fi
    for tool in $tools; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        die "missing: ${missing[*]}. Install with: apt-get update && apt-get install -y --no-install-recommends $pkgs" \
            "(taskset: util-linux, ss: iproute2, timeout: coreutils)"
    fi
}

main() {
    mkdir -p "$OUT/raw"
    if [ "${1:-}" = "--summarize-only" ]; then
        # shellcheck disable=SC1091
        if [ -s "$OUT/params.env" ]; then . "$OUT/params.env"; fi
        summarize; cat "$OUT/summary.md"; return
    fi
    [ $# -eq 0 ] || { echo "usage: bench/run.sh [--summarize-only]  (settings via environment, see bench/README.md)" >&2; exit 2; }
    : >"$OUT/run.log"
    rm -f "$OUT"/phase_*.tsv "$OUT"/medians_*.tsv "$OUT/summary.md" "$OUT"/raw/*
    check_tools
    if [ "$(nproc)" -le "$SERVER_CPU" ] || [ "$(nproc)" -le "$LOADGEN_CPU" ]; then
        die "need CPUs $LOADGEN_CPU and $SERVER_CPU (have $(nproc))"
    fi
    if has_target portcullis && [ ! -x "$PORTCULLIS_BIN" ]; then
        log "$PORTCULLIS_BIN missing: cargo build --release -p portcullis (in $REPO)"
        (cd "$REPO" && cargo build --release -p portcullis) || die "cannot build portcullis"
        [ -x "$PORTCULLIS_BIN" ] || die "built, but $PORTCULLIS_BIN is still missing (set PORTCULLIS_BIN or CARGO_TARGET_DIR)"
    fi
    local t p
    for t in direct $TARGETS_B; do
        p=$(port_of "$t")
        [ -n "$p" ] || die "unknown target '$t'"
        if ss -Hltn "sport = :$p" | grep -q .; then die "port $p ($t) already in use on this machine; pick free ports with UP_PORT/NGX_PORT/PCS_PORT"; fi
    done
    wait_gate
    trap stop_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    env_info
    save_params
    start_all
    local ph
    for ph in $PHASES; do
        case $ph in A|B|C|D) "phase_$ph" ;; *) die "unknown phase '$ph' (A B C D)" ;; esac
        check_alive "$ph"
    done
    stop_all
    echo "loadavg end: $(cat /proc/loadavg)" >>"$OUT/env.txt"
    summarize
    cat "$OUT/summary.md"
}

main "$@"
