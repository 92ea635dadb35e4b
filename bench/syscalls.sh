#!/usr/bin/env bash
# System calls (and scheduler wakeups) per request of a proxy, counted by the kernel's
# tracepoints rather than timed, so the machine's load does not move them much:
#
#   bench/syscalls.sh nginx|BIN LABEL [CONNS] [SECONDS]
#
# Starts an nginx upstream (port 18197) and the proxy (port 18198): nginx with
# bench/conf/proxy.nginx.conf's settings, or the Portcullis binary BIN with
# bench/conf/portcullis.yaml's; both pinned to CPU 1 as in bench/run.sh, wrk -t1 on CPU 0.
# Warms up with wrk -cCONNS (default 16) for 2 s, then counts every syscall the proxy makes
# (`perf stat -e 'syscalls:sys_enter_*'`, all its threads) and its wakeups
# (sched:sched_waking) while wrk -cCONNS runs for SECONDS (default 4), and prints each count
# over the requests wrk completed; then the wakeups again, recorded, by the woken thread's
# name (a second run). With STRACE=1, a third run under `strace -c -f` for the calls that
# failed (EAGAIN reads: the errors column). Stops everything it started, by PID.
# Needs perf (linux-perf) with tracefs mounted, strace, nginx, wrk, curl.
set -euo pipefail
BIN=$1 LABEL=$2 C=${3:-16} N=${4:-4}
RUN=${RUN:-/tmp/pcssys}; UP=18197; PORT=18198
mkdir -p "$RUN/tmp"
[ -d /sys/kernel/tracing/events/syscalls ] || mount -t tracefs nodev /sys/kernel/tracing
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cat >"$RUN/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $RUN/upstream.pid; error_log $RUN/upstream.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http { access_log off; default_type text/plain; keepalive_timeout 120s; keepalive_requests 100000000;
  client_body_temp_path $RUN/tmp/u;
  server { listen 127.0.0.1:$UP backlog=4096; location / { return 200 "ok\n"; } } }
CONF
taskset -c 1 nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" >/dev/null 2>&1 &
PIDS+=($!)
if [ "$BIN" = nginx ]; then
  cat >"$RUN/proxy.conf" <<CONF
worker_processes 1; daemon off; pid $RUN/proxy.pid; error_log $RUN/proxy.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http { access_log off; keepalive_timeout 120s; keepalive_requests 100000000;
  client_body_temp_path $RUN/tmp/p; proxy_temp_path $RUN/tmp/pp;
  upstream backend { server 127.0.0.1:$UP; keepalive 1024; keepalive_requests 100000000; keepalive_timeout 120s; }
  server { listen 127.0.0.1:$PORT backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
  taskset -c 1 nginx -p "$RUN" -e "$RUN/proxy.err" -c "$RUN/proxy.conf" >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 1
  # The worker, not the master: the master only waits.
  TARGET=$(pgrep -P "$(cat "$RUN/proxy.pid")" | head -1)
else
  sed -e "s/@UP_PORT@/$UP/; s/@PCS_PORT@/$PORT/" "$(dirname "$0")/conf/portcullis.yaml" >"$RUN/portcullis.yaml"
  PORTCULLIS_LOG=warn taskset -c 1 "$BIN" run -c "$RUN/portcullis.yaml" >"$RUN/$LABEL.log" 2>&1 &
  PIDS+=($!)
  TARGET=$!
fi
for _ in $(seq 1 100); do curl -fsS --max-time 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.2; done
URL="http://127.0.0.1:$PORT/"
taskset -c 0 wrk -t1 -c "$C" -d 2s "$URL" >/dev/null
OUT=$RUN/$LABEL.c$C
perf stat -x, -e 'syscalls:sys_enter_*' -e sched:sched_waking -e context-switches -e page-faults -p "$TARGET" -o "$OUT.perf" &
PERF=$!
sleep 0.5
taskset -c 0 wrk -t1 -c "$C" -d "${N}s" "$URL" >"$OUT.wrk"
kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
REQ=$(awk '/requests in/ {print $1}' "$OUT.wrk")
echo "$LABEL c$C: $REQ requests (perf stat)"
awk -F, -v req="$REQ" '$1 ~ /^[0-9]+$/ && $1 > 0 { n = $3; sub(/^syscalls:sys_enter_/, "", n); total += ($3 ~ /^syscalls/) ? $1 : 0;
    printf "  %-22s %8.3f /req\n", n, $1 / req } END { printf "  %-22s %8.3f /req\n", "ALL syscalls", total / req }' "$OUT.perf"
perf record -q -e sched:sched_waking -p "$TARGET" -o "$OUT.wake.data" &
PERF=$!
sleep 0.5
taskset -c 0 wrk -t1 -c "$C" -d "${N}s" "$URL" >"$OUT.wrk3"
kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
REQ=$(awk '/requests in/ {print $1}' "$OUT.wrk3")
echo "$LABEL c$C: $REQ requests (wakeups made by the proxy, by the woken thread's name)"
perf script -i "$OUT.wake.data" -F trace 2>/dev/null | sed -E 's/^comm=([^ ]*).*/\1/' | sort | uniq -c |
  awk -v req="$REQ" '{ printf "  %-22s %8.3f /req\n", $2, $1 / req }'
[ -n "${STRACE:-}" ] || exit 0
strace -c -f -p "$TARGET" -o "$OUT.strace" &
ST=$!
sleep 0.5
taskset -c 0 wrk -t1 -c "$C" -d "${N}s" "$URL" >"$OUT.wrk2"
kill -INT "$ST"; wait "$ST" 2>/dev/null || true
REQ=$(awk '/requests in/ {print $1}' "$OUT.wrk2")
echo "$LABEL c$C: $REQ requests (strace -c: calls, errors)"
awk -v req="$REQ" '$1 ~ /^[0-9.]+$/ && NF >= 5 { name = $NF; calls = $4; errs = (NF == 6) ? $5 : 0;
    printf "  %-22s %8.3f /req  errors %8.3f /req\n", name, calls / req, errs / req }' "$OUT.strace"
