#!/usr/bin/env bash
# Portcullis benchmark: the upstream directly vs nginx vs Portcullis (and HAProxy with
# WITH_HAPROXY=1), all on 127.0.0.1, measured in one run. Plain bash + the configs in conf/.
# Built on the shared baseline harness. See README.md.
#
#   bench/run.sh                 # all phases (A B C D), ~15 min on 2 cores
#   PHASES="A" REPS=5 bench/run.sh
#   bench/run.sh --summarize-only   # rebuild summary.md from $OUT/*.tsv
#
# Every server listens on 127.0.0.1 only, writes under $RUN, and is stopped by
# PID on exit. Every load run is bounded in time (wrk -d / h2load -D, plus timeout).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$REPO/target/release/portcullis}
if [ -n "${QUICK:-}" ]; then   # a short check: one repetition, one connection count
    REPS=${REPS:-1}; DUR=${DUR:-5}; CONNS=${CONNS:-64}; RATE_DUR=${RATE_DUR:-8}; WARMUP=${WARMUP:-2}
fi

RUN=${RUN:-/tmp/gwbench}
OUT=${OUT:-$RUN/results}
DUR=${DUR:-10}                     # seconds per closed-loop wrk run
WARMUP=${WARMUP:-3}                # seconds of wrk warm-up per target
REPS=${REPS:-3}
CONNS=${CONNS:-"16 64 256"}
RATE_CONNS=${RATE_CONNS:-64}       # fixed-rate phase: connections
RATE_PER_CONN=${RATE_PER_CONN:-80} # fixed-rate phase: req/s per connection (64*80 = 5120 req/s)
RATE_DUR=${RATE_DUR:-15}
RATE_WARM=${RATE_WARM:-2}
IDLE_CONNS=${IDLE_CONNS:-9000}     # memory phase: idle keep-alive connections (fd hard limit 20000, haproxy ~2 fd/conn)
LOADGEN_CPU=${LOADGEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
UP_PORT=${UP_PORT:-18080}
NGX_PORT=${NGX_PORT:-18081}
HAP_PORT=${HAP_PORT:-18082}
PCS_PORT=${PCS_PORT:-18083}
PHASES=${PHASES:-"A B C D"}
OHA=${OHA:-$(command -v oha || true)}
WAIT_FILE=${WAIT_FILE:-}           # optional gate: wait until WAIT_FILE contains WAIT_WORD
WAIT_WORD=${WAIT_WORD:-real}
WAIT_MAX=${WAIT_MAX:-1200}         # seconds, checked every 30 s

if [ -n "${WITH_HAPROXY:-}" ]; then
    TARGETS_ALL="direct nginx haproxy portcullis"; TARGETS_PROXY="nginx haproxy portcullis"
else
    TARGETS_ALL="direct nginx portcullis"; TARGETS_PROXY="nginx portcullis"
fi
TICK_US=$((1000000 / $(getconf CLK_TCK)))

declare -A PID=()
HOLDERS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_of()   { case $1 in direct) echo "$UP_PORT";; nginx) echo "$NGX_PORT";; haproxy) echo "$HAP_PORT";; portcullis) echo "$PCS_PORT";; esac; }
server_of() { case $1 in direct) echo upstream;; *) echo "$1";; esac; }

# ---------------------------------------------------------------- processes
procs_of() {   # master PID and its direct children (nginx workers)
    local p=${PID[$1]:-}
    [ -n "$p" ] || return 0
    echo "$p"
    ps -o pid= --ppid "$p" 2>/dev/null || true
}

cpu_ticks() {  # utime+stime of a server's processes, in clock ticks
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

cpu_snap() {   # "cpu0_busy cpu0_total cpu1_busy cpu1_total steal_total" from /proc/stat
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

wait_ok() {        # port: wait (max 10 s) until GET / answers "ok"
    local i
    for i in $(seq 1 100); do
        [ "$(curl -fsS --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null)" = "ok" ] && return 0
        sleep 0.1
    done
    return 1
}

stop_all() {
    local name p i
    for p in "${HOLDERS[@]:-}"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
    done
    for name in "${!PID[@]}"; do
        p=${PID[$name]}
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PID=()
}

render() {         # template -> $RUN/conf/<name>
    sed -e "s#@RUN@#$RUN#g" -e "s#@UP_PORT@#$UP_PORT#g" \
        -e "s#@NGX_PORT@#$NGX_PORT#g" -e "s#@HAP_PORT@#$HAP_PORT#g" -e "s#@PCS_PORT@#$PCS_PORT#g" \
        "$HERE/conf/$1" >"$RUN/conf/$1"
}

start_all() {
    : >"$RUN/pids"
    mkdir -p "$RUN/conf" "$RUN/tmp"
    render upstream.nginx.conf; render proxy.nginx.conf; render haproxy.cfg; render portcullis.yaml
    start_server upstream "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/upstream.startup.log" -c "$RUN/conf/upstream.nginx.conf"
    start_server nginx    "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/nginx-proxy.startup.log" -c "$RUN/conf/proxy.nginx.conf"
    [ -z "${WITH_HAPROXY:-}" ] || start_server haproxy "$SERVER_CPU" haproxy -db -f "$RUN/conf/haproxy.cfg"
    # exec keeps the PID; the soft fd limit is raised like nginx's worker_rlimit_nofile.
    start_server portcullis "$SERVER_CPU" bash -c 'ulimit -n 20000 && PORTCULLIS_LOG=warn exec "$0" run -c "$1"' \
        "$PORTCULLIS_BIN" "$RUN/conf/portcullis.yaml"
    wait_ok "$UP_PORT"  || die "upstream did not come up (see $RUN/*.log)"
    wait_ok "$NGX_PORT" || die "nginx proxy did not come up"
    [ -z "${WITH_HAPROXY:-}" ] || wait_ok "$HAP_PORT" || die "haproxy did not come up"
    wait_ok "$PCS_PORT" || die "portcullis did not come up (see $RUN/portcullis.stdout)"
    log "servers up: upstream=${PID[upstream]} nginx=${PID[nginx]} portcullis=${PID[portcullis]} (all on CPU $SERVER_CPU)"
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
    local phase=$1 rep=$2 target=$3 c=$4 port f srv s0 s1 p0 p1 u0 u1 parsed req pcpu ucpu uspr
    port=$(port_of "$target"); srv=$(server_of "$target")
    f="$OUT/raw/wrk_${phase}_${target}_c${c}_r${rep}.txt"
    s0=$(cpu_snap); u0=$(cpu_ticks upstream); p0=0
    [ "$target" = direct ] || p0=$(cpu_ticks "$srv")
    timeout $((DUR + 30)) taskset -c "$LOADGEN_CPU" \
        wrk -t1 -c "$c" -d "${DUR}s" --latency --timeout 5s "http://127.0.0.1:$port/" >"$f" 2>&1 || true
    u1=$(cpu_ticks upstream); p1=0
    [ "$target" = direct ] || p1=$(cpu_ticks "$srv")
    s1=$(cpu_snap)
    parsed=$(parse_wrk "$f")
    req=$(echo "$parsed" | cut -f5)
    pcpu=$(( (p1 - p0) * TICK_US )); ucpu=$(( (u1 - u0) * TICK_US ))
    [ "$target" = direct ] && pcpu=$ucpu      # direct: the upstream *is* the server under test
    uspr=$(awk -v a="$pcpu" -v r="$req" 'BEGIN { printf "%.2f", (r > 0 ? a / r : 0) }')
    local busy
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
        timeout $((WARMUP + 20)) taskset -c "$LOADGEN_CPU" wrk -t1 -c 64 -d "${WARMUP}s" "http://127.0.0.1:$(port_of "$t")/" >/dev/null 2>&1 || true
    done
}

phase_A() {  # closed loop; all servers on SERVER_CPU, wrk on LOADGEN_CPU
    log "phase A: closed-loop wrk, servers on CPU $SERVER_CPU, wrk on CPU $LOADGEN_CPU, ${DUR}s x $REPS reps, conns: $CONNS"
    tsv_header A
    warmup $TARGETS_ALL
    local rep c t
    for rep in $(seq 1 "$REPS"); do
        for c in $CONNS; do
            for t in $TARGETS_ALL; do wrk_once A "$rep" "$t" "$c" >/dev/null; done
        done
    done
}

phase_B() {  # proxy alone on SERVER_CPU; upstream moved next to wrk on LOADGEN_CPU
    log "phase B: proxy-isolated, proxy on CPU $SERVER_CPU, upstream+wrk on CPU $LOADGEN_CPU"
    tsv_header B
    pin_upstream "$LOADGEN_CPU"
    warmup $TARGETS_PROXY
    local rep c t
    for rep in $(seq 1 "$REPS"); do
        for c in $CONNS; do
            for t in $TARGETS_PROXY; do wrk_once B "$rep" "$t" "$c" >/dev/null; done
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
            [ -n "${KEEP_LOGS:-}" ] || rm -f "$lg"
            timeout $((RATE_DUR + RATE_WARM + 30)) taskset -c "$LOADGEN_CPU" \
                h2load --h1 -t1 -c "$RATE_CONNS" --rps "$RATE_PER_CONN" -D "$RATE_DUR" --warm-up-time "$RATE_WARM" \
                --log-file "$lg" "http://127.0.0.1:$port/" >"$f" 2>&1 || true
            # h2load logs only the main-duration requests (warm-up excluded); keep 200s
            pct=$(awk -F'\t' '$2 == 200 { print $3 }' "$lg" 2>/dev/null | sort -n | pctl_from_list)
            achieved=$(awk -F'\t' 'NR == 1 || $1 < m { m = $1 } $1 > M { M = $1 } END { printf "%.0f", (M > m ? NR / ((M - m) / 1e6) : 0) }' "$lg" 2>/dev/null)
            errs=$(awk -F'\t' '$2 != 200' "$lg" 2>/dev/null | wc -l)
            printf 'h2load\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$rate" "$achieved" "$pct" "$errs" | tee -a "$OUT/phase_C.tsv" >/dev/null
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

# Phase D row: target server idle_rss_kb conns_held rss_with_conns_kb delta_kb bytes_per_conn
phase_D() {
    local t srv port before after n holder i
    log "phase D: memory, RSS idle and with $IDLE_CONNS idle keep-alive connections"
    printf 'target\tserver_pids\tidle_rss_kb\tconns_held\trss_with_conns_kb\tdelta_kb\tbytes_per_conn\n' >"$OUT/phase_D.tsv"
    for t in $TARGETS_ALL; do
        srv=$(server_of "$t"); port=$(port_of "$t")
        sleep 1
        before=$(rss_kb "$srv")
        rm -f "$RUN/hold.$port"
        (   # opens N connections, sends one request on each, then execs into sleep
            # so the holder is a single PID that owns all the sockets (bounded by the sleep)
            ulimit -n $((IDLE_CONNS + 64))
            n=0
            for ((i = 0; i < IDLE_CONNS; i++)); do
                exec {fd}<>"/dev/tcp/127.0.0.1/$port" || break
                printf 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n' >&"$fd"
                n=$((n + 1))
            done
            echo "$n" >"$RUN/hold.$port"
            exec sleep 60
        ) 2>>"$OUT/run.log" &
        holder=$!; HOLDERS+=("$holder")
        for i in $(seq 1 300); do [ -s "$RUN/hold.$port" ] && break; sleep 0.2; done
        sleep 3
        n=$(cat "$RUN/hold.$port" 2>/dev/null || echo 0)
        after=$(rss_kb "$srv")
        kill -TERM "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(procs_of "$srv" | tr '\n' ',' | tr -d ' ' | sed 's/,$//')" \
            "$before" "$n" "$after" "$((after - before))" \
            "$(awk -v d=$((after - before)) -v n="$n" 'BEGIN { printf "%.0f", (n > 0 ? d * 1024 / n : 0) }')" >>"$OUT/phase_D.tsv"
        sleep 2
    done
}

# ---------------------------------------------------------------- summary
summarize() {
    local s="$OUT/summary.md"
    {
        echo "# Gateway baseline: summary (medians of $REPS runs)"
        echo
        sed -n '1,40p' "$OUT/env.txt" 2>/dev/null | sed 's/^/    /'
        echo
        if [ -s "$OUT/phase_A.tsv" ]; then
            echo "## A. Closed loop (wrk -t1, ${DUR}s): servers share CPU $SERVER_CPU, wrk on CPU $LOADGEN_CPU"
            echo
            echo "| target | conns | req/s | ratio vs direct | p50 µs | p99 µs | server CPU µs/req | server CPU busy % | loadgen CPU busy % | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            awk -F'\t' -v mode=A -f <(median_awk) "$OUT/phase_A.tsv"
            echo
        fi
        if [ -s "$OUT/phase_B.tsv" ]; then
            echo "## B. Proxy alone on CPU $SERVER_CPU (upstream + wrk share CPU $LOADGEN_CPU)"
            echo
            echo "| target | conns | req/s | p50 µs | p99 µs | proxy CPU µs/req | proxy req/s per busy core | proxy CPU busy % | other CPU busy % | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            awk -F'\t' -v mode=B -f <(median_awk) "$OUT/phase_B.tsv"
            echo
        fi
        if [ -s "$OUT/phase_C.tsv" ]; then
            echo "## C. Fixed rate ($((RATE_CONNS * RATE_PER_CONN)) req/s target, $RATE_CONNS conns, ${RATE_DUR}s), layout as A"
            echo
            echo "| tool | target | achieved req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | errors |"
            echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            awk -F'\t' -v mode=C -f <(median_awk) "$OUT/phase_C.tsv"
            echo
        fi
        if [ -s "$OUT/phase_D.tsv" ]; then
            echo "## D. Memory (VmRSS of master+workers; kernel socket buffers not included)"
            echo
            echo "| target | idle RSS KiB | conns held | RSS with conns KiB | delta KiB | bytes/conn |"
            echo "|---|---:|---:|---:|---:|---:|"
            awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s |\n", $1, $3, $4, $5, $6, $7 }' "$OUT/phase_D.tsv"
            echo
        fi
        goals
    } >"$s"
    log "summary: $s"
}

# Goals (issue "The gateway serves traffic"): portcullis vs nginx from the medians above.
goals() {
    [ -s "$OUT/phase_B.tsv" ] || [ -s "$OUT/phase_C.tsv" ] || [ -s "$OUT/phase_D.tsv" ] || return 0
    echo "## Goals: Portcullis vs nginx"
    echo
    echo "| goal | nginx | portcullis | ratio | verdict |"
    echo "|---|---:|---:|---:|---|"
    if [ -s "$OUT/phase_B.tsv" ]; then
        awk -F'\t' -f <(median_awk_fn) -e '
            NR > 1 { k = $2 SUBSEP $3; v[k] = (v[k] == "" ? $14 : v[k] "," $14); r[k] = (r[k] == "" ? $5 : r[k] "," $5); c[$3] = 1 }
            END { for (cc in c) {
                    n = med(v["nginx" SUBSEP cc]); p = med(v["portcullis" SUBSEP cc])
                    if (n > 0) printf "| CPU µs/req, proxy alone on a core, %s conns (≤ 0.9×) | %.2f | %.2f | %.2f | %s |\n", cc, n, p, p / n, (p <= 0.9 * n ? "PASS" : "FAIL")
                    n = med(r["nginx" SUBSEP cc]); p = med(r["portcullis" SUBSEP cc])
                    if (n > 0) printf "| req/s, proxy alone on a core, %s conns | %.0f | %.0f | %.2f | (info) |\n", cc, n, p, p / n
                } }' "$OUT/phase_B.tsv"
    fi
    if [ -s "$OUT/phase_C.tsv" ]; then
        awk -F'\t' -f <(median_awk_fn) -e '
            NR > 1 && $1 == "h2load" { v[$2] = (v[$2] == "" ? $9 : v[$2] "," $9) }
            END { d = med(v["direct"]); n = med(v["nginx"]) - d; p = med(v["portcullis"]) - d
                  printf "| added p99 µs at the fixed rate (≤ nginx) | %.0f | %.0f | %.2f | %s |\n", n, p, (n > 0 ? p / n : 0), (p <= n ? "PASS" : "FAIL") }' "$OUT/phase_C.tsv"
    fi
    if [ -s "$OUT/phase_D.tsv" ]; then
        awk -F'\t' 'NR > 1 { idle[$1] = $3; per[$1] = $7 }
            END { printf "| idle RSS KiB (< 30 MiB) | %s | %s | | %s |\n", idle["nginx"], idle["portcullis"], (idle["portcullis"] < 30720 ? "PASS" : "FAIL")
                  printf "| bytes per idle keep-alive connection (≤ 4096) | %s | %s | | %s |\n", per["nginx"], per["portcullis"], (per["portcullis"] <= 4096 ? "PASS" : "FAIL") }' "$OUT/phase_D.tsv"
    fi
    echo
}

median_awk_fn() {  # just the med() function, for small awk programs
    cat <<'AWK'
function med(str,   n, a, i, j, x) {
    n = split(str, a, ",")
    for (i = 2; i <= n; i++) { x = a[i] + 0; j = i - 1; while (j > 0 && a[j] + 0 > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
    if (n == 0) return 0
    return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
AWK
}

median_awk() {  # awk program: medians per key, mawk-compatible (no asort)
    cat <<'AWK'
function med(str,   n, a, i, j, x) {
    n = split(str, a, ",")
    for (i = 2; i <= n; i++) { x = a[i] + 0; j = i - 1; while (j > 0 && a[j] + 0 > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
    if (n == 0) return 0
    return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(k, col, v) { V[k, col] = (V[k, col] == "" ? v : V[k, col] "," v) }
NR == 1 { next }
mode == "A" || mode == "B" {
    k = $2 SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    add(k, "rps", $5); add(k, "p50", $6); add(k, "p99", $8); add(k, "err", $10 + $11)
    add(k, "uspr", $14); add(k, "lb", $15); add(k, "sb", $16)
}
mode == "C" {
    k = $1 SUBSEP $2
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    add(k, "ach", $5); add(k, "p50", $7); add(k, "p90", $8); add(k, "p99", $9); add(k, "p999", $10); add(k, "err", $12)
}
END {
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, kk, SUBSEP)
        if (mode == "A") {
            d = kk[1] == "direct" ? med(V[k, "rps"]) : med(V["direct" SUBSEP kk[2], "rps"])
            printf "| %s | %s | %.0f | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f | %d |\n", kk[1], kk[2], med(V[k, "rps"]),
                (d > 0 ? med(V[k, "rps"]) / d : 0), med(V[k, "p50"]), med(V[k, "p99"]), med(V[k, "uspr"]), med(V[k, "sb"]), med(V[k, "lb"]), med(V[k, "err"])
        } else if (mode == "B") {
            u = med(V[k, "uspr"])
            printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %d |\n", kk[1], kk[2], med(V[k, "rps"]),
                med(V[k, "p50"]), med(V[k, "p99"]), u, (u > 0 ? 1e6 / u : 0), med(V[k, "sb"]), med(V[k, "lb"]), med(V[k, "err"])
        } else {
            dk = kk[1] SUBSEP "direct"
            printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d |\n", kk[1], kk[2], med(V[k, "ach"]),
                med(V[k, "p50"]), med(V[k, "p90"]), med(V[k, "p99"]), med(V[k, "p999"]),
                med(V[k, "p50"]) - med(V[dk, "p50"]), med(V[k, "p99"]) - med(V[dk, "p99"]), med(V[k, "err"])
        }
    }
}
AWK
}

env_info() {
    {
        echo "date:        $(date -u +%FT%TZ)"
        echo "host:        $(nproc) CPUs, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
        echo "kernel:      $(uname -r)"
        echo "nginx:       $(nginx -v 2>&1 | sed 's/.*: //')"
        echo "haproxy:     $( [ -n "${WITH_HAPROXY:-}" ] && haproxy -v 2>&1 | head -1 || echo 'not used')"
        echo "portcullis:  $PORTCULLIS_BIN ($(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
        echo "wrk:         $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
        echo "h2load:      $(h2load --version 2>&1 | head -1)"
        echo "oha:         $([ -n "$OHA" ] && "$OHA" --version 2>&1 | head -1 || echo 'not used')"
        echo "pinning:     load generator on CPU $LOADGEN_CPU; servers on CPU $SERVER_CPU (phase B: upstream moved to CPU $LOADGEN_CPU)"
        echo "workers:     1 nginx worker (upstream), 1 nginx worker (proxy), portcullis: tokio threads = cores it is pinned to (1)"
        echo "params:      DUR=${DUR}s REPS=$REPS CONNS='$CONNS' RATE=$((RATE_CONNS * RATE_PER_CONN))/s over $RATE_CONNS conns IDLE_CONNS=$IDLE_CONNS"
        echo "loadavg:     $(cat /proc/loadavg)"
    } >"$OUT/env.txt"
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

main() {
    mkdir -p "$OUT/raw"
    if [ "${1:-}" = "--summarize-only" ]; then summarize; cat "$OUT/summary.md"; return; fi
    local tool
    for tool in nginx wrk h2load taskset curl jq ${WITH_HAPROXY:+haproxy}; do command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y --no-install-recommends nginx wrk nghttp2-client curl jq${WITH_HAPROXY:+ haproxy})"; done
    if [ ! -x "$PORTCULLIS_BIN" ]; then
        log "building $PORTCULLIS_BIN (cargo build --release -p portcullis)"
        (cd "$REPO" && cargo build --release -p portcullis) || die "cannot build portcullis"
    fi
    for p in "$UP_PORT" "$NGX_PORT" "$HAP_PORT" "$PCS_PORT"; do
        ss -Hltn "sport = :$p" | grep -q . && die "port $p already in use"
    done
    [ "$(nproc)" -gt "$SERVER_CPU" ] || die "need at least $((SERVER_CPU + 1)) CPUs"
    wait_gate
    trap stop_all EXIT INT TERM
    : >"$OUT/run.log"
    env_info
    start_all
    local ph
    for ph in $PHASES; do "phase_$ph"; done
    stop_all
    env_info_end=$(cat /proc/loadavg); echo "loadavg end: $env_info_end" >>"$OUT/env.txt"
    summarize
    cat "$OUT/summary.md"
}

main "$@"
