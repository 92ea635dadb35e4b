#!/usr/bin/env bash
# Idle-connection memory: RSS growth of Portcullis per idle HTTP/1.1 keep-alive connection,
# plaintext and TLS (SPEC §9: ≤ 4 KiB plaintext, ≤ 16 KiB with TLS).
#
#   bench/idle.sh                                  # N=10000, the release build
#   N=2000 PORTCULLIS_BIN=target/debug/portcullis bench/idle.sh
#
# One Portcullis with a plaintext and a TLS listener (ECDSA P-256 certificate made here with
# openssl) in front of a mock route, so no upstream process is involved. For each listener a
# Python holder opens N connections one after another, sends one `GET /` on each, reads the
# whole answer and keeps the socket open; RSS (VmRSS) is read before and after, once every
# connection is answered. Kernel socket buffers are not in VmRSS. Prints one TSV row per
# listener: listener conns rss_before_kb rss_after_kb bytes_per_conn.
#
# Needs: python3, openssl. Ports PLAIN_PORT=18190, TLS_PORT=18191. Everything under
# RUN=/tmp/pcsidle; processes stopped by PID.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUN=${RUN:-/tmp/pcsidle}
N=${N:-10000}
PLAIN_PORT=${PLAIN_PORT:-18190}
TLS_PORT=${TLS_PORT:-18191}
BIN=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}

for tool in python3 openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "no $BIN: build it (cargo build --release -p portcullis) or set PORTCULLIS_BIN" >&2; exit 1; }

rm -rf "$RUN"; mkdir -p "$RUN"
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
    -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null

cat >"$RUN/portcullis.yaml" <<EOF
version: 1
listeners:
  - { name: plain, bind: "127.0.0.1:$PLAIN_PORT" }
  - name: tls
    bind: "127.0.0.1:$TLS_PORT"
    tls: { certificates: [{ cert: $RUN/cert.pem, key: $RUN/key.pem }] }
limits:
  max_connections: $((2 * N + 100))
  # The connections must outlive the opening and the reading.
  idle_timeout: 300s
  header_read_timeout: 300s
logging:
  access: { path: "off" }
upstreams:
  hello:
    mock: { status: 200, headers: { content-type: text/plain }, body: "hello" }
routes:
  - { name: root, match: { path: "/" }, upstream: hello, auth: none }
EOF

ulimit -n $((2 * N + 512)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$BIN" run -c "$RUN/portcullis.yaml" >"$RUN/portcullis.log" 2>&1 &
PIDS+=($!)
PCS=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PLAIN_PORT") 2>/dev/null && break
    sleep 0.1
done

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$PCS/status"; }

cat >"$RUN/hold.py" <<'PY'
import socket, ssl, sys, time, os, signal
port, n, use_tls, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "tls", sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
held = []
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        if use_tls:
            s = ctx.wrap_socket(s, server_hostname="bench.test")
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"hello"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        held.append(s)
    except OSError as e:
        print(f"connection {i}: {e}", file=sys.stderr)
        break
with open(ready, "w") as f:
    f.write(str(len(held)))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(600)
PY

printf 'listener\tconns\trss_before_kb\trss_after_kb\tbytes_per_conn\n'
for kind in plain tls; do
    port=$PLAIN_PORT; [ "$kind" = tls ] && port=$TLS_PORT
    sleep 2
    before=$(rss_kb)
    rm -f "$RUN/ready.$kind"
    python3 "$RUN/hold.py" "$port" "$N" "$kind" "$RUN/ready.$kind" 2>>"$RUN/hold.err" &
    holder=$!; PIDS+=("$holder")
    for _ in $(seq 1 3000); do [ -s "$RUN/ready.$kind" ] && break; sleep 0.2; done
    held=$(cat "$RUN/ready.$kind" 2>/dev/null || echo 0)
    sleep 3
    after=$(rss_kb)
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$held" "$before" "$after" \
        "$(awk -v d=$((after - before)) -v n="$held" 'BEGIN { printf "%.0f", (n > 0 ? d * 1024 / n : 0) }')"
    kill -TERM "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
done
