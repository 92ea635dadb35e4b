#!/usr/bin/env bash
# TLS benchmark: Portcullis against nginx, both terminating TLS with the same certificate
# (ECDSA P-256, made here with openssl) in front of the same plain-HTTP nginx upstream.
#
#   bench/tls.sh                      # DUR=10 REPS=3
#   DUR=5 REPS=1 bench/tls.sh         # quick look
#
# Two measurements per proxy, the proxy alone on SERVER_CPU, wrk and the upstream on
# LOADGEN_CPU (as phase B of run.sh):
#   keepalive  - wrk -c KA_CONNS over HTTPS keep-alive connections: requests/s and proxy CPU
#                microseconds per request;
#   handshake  - wrk -c HS_CONNS with `Connection: close`: every request is a new TCP
#                connection and a full TLS handshake (wrk does not resume sessions):
#                handshakes/s and proxy CPU microseconds per handshake.
# Plain-HTTP keep-alive rows of both proxies are measured in the same run, for the ratio
# "TLS on / plain" the performance budget (SPEC §9) is about.
#
# Needs: nginx wrk curl openssl taskset (see bench/README.md). Ports: upstream UP_PORT=18090,
# nginx TLS NGX_TLS_PORT=18091, nginx plain NGX_PORT=18092, Portcullis TLS PCS_TLS_PORT=18093,
# Portcullis plain PCS_PORT=18094. Everything under RUN=/tmp/pcstls, stopped by PID.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
RUN=${RUN:-/tmp/pcstls}
DUR=${DUR:-10}
REPS=${REPS:-3}
KA_CONNS=${KA_CONNS:-64}
HS_CONNS=${HS_CONNS:-16}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
UP_PORT=${UP_PORT:-18090}
NGX_TLS_PORT=${NGX_TLS_PORT:-18091}
NGX_PORT=${NGX_PORT:-18092}
PCS_TLS_PORT=${PCS_TLS_PORT:-18093}
PCS_PORT=${PCS_PORT:-18094}
BIN=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

for tool in nginx wrk curl openssl taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool: see bench/README.md" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then (cd "$ROOT" && cargo build --release -p portcullis); fi

rm -rf "$RUN"; mkdir -p "$RUN/tmp" "$RUN/raw"
declare -A PID=()
stop_all() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

# The certificate both proxies serve.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
    -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
# rustls reads PKCS#8, SEC1 or PKCS#1 keys; openssl writes PKCS#8 here.

write_upstream_conf "$RUN/upstream.conf" "$RUN" "$UP_PORT"
cat >"$RUN/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $RUN/proxy.pid; error_log $RUN/proxy.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http { access_log off; keepalive_timeout 120s; keepalive_requests 100000000;
  client_body_temp_path $RUN/tmp/pb; proxy_temp_path $RUN/tmp/pp; fastcgi_temp_path $RUN/tmp/pf;
  uwsgi_temp_path $RUN/tmp/pu; scgi_temp_path $RUN/tmp/ps;
  ssl_session_cache shared:SSL:10m;
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 1024; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$NGX_TLS_PORT ssl backlog=4096;
    listen 127.0.0.1:$NGX_PORT backlog=4096;
    ssl_certificate $RUN/cert.pem; ssl_certificate_key $RUN/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  } }
EOF
cat >"$RUN/portcullis.yaml" <<EOF
version: 1
listeners:
  - { name: tls, bind: "127.0.0.1:$PCS_TLS_PORT", tls: { certificates: [{ cert: cert.pem, key: key.pem }] } }
  - { name: plain, bind: "127.0.0.1:$PCS_PORT" }
limits: { max_connections: 19000, idle_timeout: 120s }
logging: { access: { path: "off" } }
upstreams:
  up: { targets: ["http://127.0.0.1:$UP_PORT"] }
routes:
  - { name: all, match: { path: "/{*rest}" }, upstream: up, auth: none }
  - { name: root, match: { path: "/" }, upstream: up, auth: none }
EOF

taskset -c "$LOADGEN_CPU" nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" &
PID[upstream]=$!
taskset -c "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/proxy.err" -c "$RUN/proxy.conf" &
PID[nginx]=$!
# shellcheck disable=SC2016
taskset -c "$SERVER_CPU" env PORTCULLIS_LOG=warn bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$0" run -c "$1"' \
    "$BIN" "$RUN/portcullis.yaml" >"$RUN/portcullis.log" 2>&1 &
PID[portcullis]=$!
for port in $UP_PORT $NGX_PORT $PCS_PORT; do
    for _ in $(seq 1 100); do curl -fsS --max-time 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
done
for port in $NGX_TLS_PORT $PCS_TLS_PORT; do
    curl -fsS -k --max-time 2 "https://127.0.0.1:$port/" >/dev/null || { echo "TLS on $port does not answer" >&2; exit 1; }
done

# target scheme port conns mode(keepalive|handshake) rep -> TSV row
measure() {
    local target=$1 scheme=$2 port=$3 conns=$4 mode=$5 rep=$6 f c0 c1 extra=()
    f="$RUN/raw/${target}_${scheme}_${mode}_r$rep.txt"
    [ "$mode" = handshake ] && extra=(-H "Connection: close")
    c0=$(cpu_ticks "${PID[$target]}")
    taskset -c "$LOADGEN_CPU" wrk -t1 -c "$conns" -d "${DUR}s" --latency "${extra[@]}" \
        "$scheme://127.0.0.1:$port/" >"$f" 2>&1 || true
    c1=$(cpu_ticks "${PID[$target]}")
    awk -v t="$target" -v s="$scheme" -v m="$mode" -v c="$conns" -v r="$rep" \
        -v cpu="$(( (c1 - c0) * TICK_US ))" '
        /requests in/ { req = $1 }
        /Requests\/sec/ { rps = $2 }
        /Non-2xx/ { bad += $NF }
        /Socket errors/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        / 99%/ { p99 = $2 }
        END { printf "%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.2f\t%d\n", t, s, m, c, r, rps, p99, (req ? cpu / req : 0), bad }' "$f"
}

OUTF="$RUN/results.tsv"
printf 'target\tscheme\tmode\tconns\trep\trps\tp99\tcpu_us_per_req\terrors\n' >"$OUTF"
for rep in $(seq 1 "$REPS"); do
    for target in nginx portcullis; do
        tls_port=$NGX_TLS_PORT plain_port=$NGX_PORT
        [ "$target" = portcullis ] && tls_port=$PCS_TLS_PORT plain_port=$PCS_PORT
        # Warm the pools and the session caches.
        taskset -c "$LOADGEN_CPU" wrk -t1 -c "$KA_CONNS" -d 2s "https://127.0.0.1:$tls_port/" >/dev/null 2>&1 || true
        measure "$target" http "$plain_port" "$KA_CONNS" keepalive "$rep" | tee -a "$OUTF"
        measure "$target" https "$tls_port" "$KA_CONNS" keepalive "$rep" | tee -a "$OUTF"
        measure "$target" https "$tls_port" "$HS_CONNS" handshake "$rep" | tee -a "$OUTF"
    done
done

echo
echo "Medians over $REPS run(s) of ${DUR}s; proxy alone on CPU $SERVER_CPU; ECDSA P-256 certificate; TLS 1.3 (wrk's OpenSSL picks it with both)."
awk -F'\t' 'NR > 1 { k = $1 "\t" $2 "\t" $3; rps[k] = rps[k] " " $6; cpu[k] = cpu[k] " " $8; err[k] += $9; order[k] = ++n }
    '"$MED_AWK"'
    END {
        print "| measurement | nginx req/s | Portcullis req/s | nginx CPU µs/req | Portcullis CPU µs/req | Portcullis / nginx (req per CPU) | errors |"
        print "|---|---|---|---|---|---|---|"
        split("http\tkeepalive|https\tkeepalive|https\thandshake", rows, "|")
        for (i = 1; i <= 3; i++) {
            kn = "nginx\t" rows[i]; kp = "portcullis\t" rows[i]
            cn = med(cpu[kn]); cp = med(cpu[kp])
            label = rows[i]; gsub("\t", " ", label)
            printf "| %s | %.0f | %.0f | %.1f | %.1f | %.2f | %d |\n", label, med(rps[kn]), med(rps[kp]), cn, cp, (cp ? cn / cp : 0), err[kn] + err[kp]
        }
    }' "$OUTF" | tee "$RUN/summary.md"
