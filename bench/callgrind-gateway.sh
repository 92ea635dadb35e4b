#!/usr/bin/env bash
# Instructions per request of the whole gateway under callgrind, with bench/features.sh's config
# and requests (plain proxying, the WAF's built-in rules, or FEATURE=validate's JSON Schema on
# the `all` route; its GET or its 4 KiB JSON POST):
#
#   bench/callgrind-gateway.sh BIN LABEL plain|waf|validated get|json [SECONDS]
#
# Starts an nginx upstream (port 18195, left running: stop it by the PID in $RUN/nginx.pid),
# the gateway (port 18196) under valgrind, sends wrk -t1 -c16 for 3 s uncounted, zeroes the
# counters, sends SECONDS (default 12) more, dumps, stops the gateway, and prints the dump's
# instructions over the requests wrk completed. Unlike features.sh, the machine's load does not
# move the count. Needs valgrind (callgrind_control), nginx, wrk, curl.
set -euo pipefail
BIN=$1 LABEL=$2 VARIANT=$3 CASE=$4 N=${5:-12}
RUN=${RUN:-/tmp/pcscg}; UP=18195; PORT=18196
mkdir -p $RUN/tmp
if ! curl -fsS --max-time 1 http://127.0.0.1:$UP/ >/dev/null 2>&1; then
  cat >$RUN/upstream.conf <<CONF
worker_processes 1; daemon off; pid $RUN/upstream.pid; error_log $RUN/upstream.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; client_body_temp_path $RUN/tmp/u;
  server { listen 127.0.0.1:$UP backlog=4096; location / { return 200 "ok"; } } }
CONF
  nginx -p $RUN -e $RUN/upstream.err -c $RUN/upstream.conf >/dev/null 2>&1 & echo $! >$RUN/nginx.pid
  sleep 1
fi
limits="" all_only=""
[ "$VARIANT" = waf ] && limits=$'waf: { mode: block }\n'
if [ "$VARIANT" = validated ]; then
  # features.sh's schema for FEATURE=validate, on the route the POSTs take, as it writes it.
  cat >$RUN/order.schema.json <<'JSON'
{
  "type": "object",
  "required": ["customer", "items"],
  "additionalProperties": false,
  "properties": {
    "customer": { "type": "string", "minLength": 1, "maxLength": 64 },
    "note": { "type": "string", "maxLength": 2000 },
    "items": {
      "type": "array", "minItems": 1, "maxItems": 100,
      "items": {
        "type": "object",
        "required": ["id", "sku", "qty", "price"],
        "additionalProperties": false,
        "properties": {
          "id": { "type": "integer", "minimum": 0 },
          "sku": { "type": "string", "pattern": "^SKU-[0-9]{5}$" },
          "name": { "type": "string", "maxLength": 200 },
          "description": { "type": "string", "maxLength": 2000 },
          "qty": { "type": "integer", "minimum": 1, "maximum": 1000 },
          "price": { "type": "number", "exclusiveMinimum": 0 }
        }
      }
    }
  }
}
JSON
  all_only=", validate: { schema: \"$RUN/order.schema.json\" }"
fi
cat >$RUN/$VARIANT.yaml <<YAML
version: 1
listeners: [{ name: l, bind: "127.0.0.1:$PORT" }]
limits: { max_connections: 19000, idle_timeout: 120s }
logging: { access: { path: "off" } }
upstreams:
  up: { targets: ["http://127.0.0.1:$UP"] }
$limits
routes:
  - { name: all, match: { path: "/{*rest}" }, upstream: up, auth: none$all_only }
  - { name: root, match: { path: "/" }, upstream: up, auth: none }
YAML
if [ ! -s $RUN/body.json ]; then
  {
    printf '{"customer":"c-1842","note":"Leave it with the neighbour at no. 12, please","items":['
    for i in $(seq 0 29); do
      [ "$i" = 0 ] || printf ','
      printf '{"id":%d,"sku":"SKU-%05d","name":"Widget number %d","description":"A sturdy widget for everyday use, blue","qty":%d,"price":%d.99}' \
        "$i" "$i" "$i" $((i % 7 + 1)) $((i * 3 + 5))
    done
    printf ']}'
  } >$RUN/body.json
fi
OUT=$RUN/cg.$LABEL.$VARIANT.$CASE
rm -f $OUT*
MIMALLOC_PURGE_DELAY=0 PORTCULLIS_LOG=warn valgrind --tool=callgrind --callgrind-out-file=$OUT --dump-line=no "$BIN" run -c $RUN/$VARIANT.yaml >$RUN/$LABEL.$VARIANT.log 2>&1 &
VPID=$!
for _ in $(seq 1 300); do curl -fsS --max-time 2 http://127.0.0.1:$PORT/ >/dev/null 2>&1 && break; sleep 0.5; done
printf 'local f = io.open("%s"); wrk.body = f:read("*a"); f:close()\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' $RUN/body.json > $RUN/post.lua
if [ "$CASE" = get ]; then
  ARGS=(http://127.0.0.1:$PORT"/api/products?category=books&max_price=25&sort=price_desc")
else
  ARGS=(-s $RUN/post.lua http://127.0.0.1:$PORT/api/orders)
fi
wrk -t1 -c 16 -d 3s "${ARGS[@]}" >/dev/null
callgrind_control -z $VPID >/dev/null
wrk -t1 -c 16 -d ${N}s "${ARGS[@]}" > $RUN/wrk.$LABEL.$VARIANT.$CASE.txt
callgrind_control -d $VPID >/dev/null
sleep 1
kill $VPID; wait $VPID 2>/dev/null || true
REQ=$(awk '/requests in/ {print $1}' $RUN/wrk.$LABEL.$VARIANT.$CASE.txt)
grep -E "requests in|Non-2xx" $RUN/wrk.$LABEL.$VARIANT.$CASE.txt
DUMP=$OUT.1
IR=$(grep -E "^summary:" "$DUMP" | awk '{print $2}')
echo "$LABEL $VARIANT $CASE: requests $REQ Ir $IR per request $((IR / REQ))"
