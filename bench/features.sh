#!/usr/bin/env bash
# Cost of a gateway feature: the same Portcullis build as a plain keep-alive proxy and with
# one feature on every request, against one nginx upstream, the proxy alone on SERVER_CPU,
# wrk and the upstream on LOADGEN_CPU. Prints requests/s and proxy CPU µs per request of
# both, and the ratio the performance goals are about (feature / plain, requests per CPU).
#
#   FEATURE=rate_limit bench/features.sh   # default: a local rate limit far above the load,
#                                          # so every request is checked and admitted (goal ≥ 0.95)
#   FEATURE=rate_limit_redis bench/features.sh
#                                          # the same limit with state.redis (REDIS_URL, default
#                                          # the machine's redis://127.0.0.1:6379): one script
#                                          # call per request. Run it with CONNS=1 too: there the
#                                          # mean latency difference is the added latency per
#                                          # request.
#   FEATURE=jwt bench/features.sh          # JWT auth (RS256) with a scope policy; one token,
#                                          # so verified from the token cache as in steady
#                                          # traffic (goal ≥ 0.9). The JWKS is served by the
#                                          # nginx upstream; the key is made by openssl per run.
#   FEATURE=cors bench/features.sh         # a CORS policy (three origins, credentials, exposed
#                                          # headers) and an allowed Origin on every request, so
#                                          # every answer gets the policy's headers (goal ≥ 0.97).
#   FEATURE=waf bench/features.sh          # the WAF's built-in rules in block mode on a GET with
#                                          # three query parameters (goal ≥ 0.9)
#   FEATURE=waf_json bench/features.sh     # the same on a 4 KiB JSON POST (goal ≥ 0.8)
#   FEATURE=validate bench/features.sh     # request validation: the same 4 KiB JSON POST read
#                                          # whole and checked against a JSON Schema it fits
#                                          # (route `validate: { schema: … }`: types, bounds, a
#                                          # pattern, closed objects), so every request is
#                                          # validated and admitted (goal ≥ 0.85)
#   FEATURE=crs bench/features.sh          # OWASP CRS at paranoia level 1 (Debian's
#   FEATURE=crs_json bench/features.sh     # modsecurity-crs, scripts/modsecurity-crs.sh) instead of
#                                          # the built-in rules, on the same two requests (aim ≥ 0.5)
#   FEATURE=tracing bench/features.sh      # OTLP tracing at sample_ratio 1.0, every request a
#                                          # server and a client span, exported to the nginx
#                                          # upstream (answers 200) as the collector (goal ≤ 5%,
#                                          # i.e. ≥ 0.95)
#   DUR=8 REPS=3 CONNS=64                  # the defaults
#
# Needs: nginx wrk curl taskset. Ports: upstream 18095, Portcullis 18096 (plain) and 18097
# (rate-limited). Everything under RUN=/tmp/pcsfeat, stopped by PID.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
RUN=${RUN:-/tmp/pcsfeat}
FEATURE=${FEATURE:-rate_limit}
DUR=${DUR:-8}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
UP_PORT=${UP_PORT:-18095}
BIN=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

for tool in nginx wrk curl taskset openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: see bench/README.md" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then (cd "$ROOT" && cargo build --release -p portcullis); fi

rm -rf "$RUN"; mkdir -p "$RUN/tmp" "$RUN/raw"
case "$FEATURE" in
    rate_limit) ON=rate_limited GOAL=0.95 LABEL="local rate limit on every request" ;;
    rate_limit_redis) ON=rate_limited_redis GOAL=- LABEL="rate limit through Redis on every request" ;;
    jwt) ON=jwt GOAL=0.90 LABEL="JWT auth (RS256, cached) + scope policy" ;;
    cors) ON=cors GOAL=0.97 LABEL="CORS policy, allowed Origin on every request" ;;
    waf) ON=waf GOAL=0.90 LABEL="WAF built-in rules, GET with three query parameters" ;;
    waf_json) ON=waf GOAL=0.80 LABEL="WAF built-in rules, 4 KiB JSON POST" ;;
    validate) ON=validated GOAL=0.85 LABEL="JSON Schema validation, 4 KiB JSON POST" ;;
    crs) ON=crs GOAL=0.50 LABEL="OWASP CRS 3.3 at PL1, GET with three query parameters" ;;
    crs_json) ON=crs GOAL=0.50 LABEL="OWASP CRS 3.3 at PL1, 4 KiB JSON POST" ;;
    tracing) ON=traced GOAL=0.95 LABEL="OTLP tracing, sample_ratio 1.0" ;;
    *) echo "FEATURE must be rate_limit, rate_limit_redis, jwt, cors, waf, waf_json, validate, crs, crs_json or tracing" >&2; exit 2 ;;
esac
# What wrk sends: GET / unless the feature inspects a query or a body.
TARGET=/
WRK_SCRIPT=()
case "$FEATURE" in
    waf | crs) TARGET="/api/products?category=books&max_price=25&sort=price_desc" ;;
    waf_json | crs_json | validate)
        TARGET=/api/orders
        # An order of ~4 KiB: 30 lines of ordinary product data.
        {
            printf '{"customer":"c-1842","note":"Leave it with the neighbour at no. 12, please","items":['
            for i in $(seq 0 29); do
                [ "$i" = 0 ] || printf ','
                printf '{"id":%d,"sku":"SKU-%05d","name":"Widget number %d","description":"A sturdy widget for everyday use, blue","qty":%d,"price":%d.99}' \
                    "$i" "$i" "$i" $((i % 7 + 1)) $((i * 3 + 5))
            done
            printf ']}'
        } >"$RUN/body.json"
        printf 'local f = io.open("%s"); wrk.body = f:read("*a"); f:close()\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n' \
            "$RUN/body.json" >"$RUN/post.lua"
        WRK_SCRIPT=(-s "$RUN/post.lua")
        ;;
esac
if [ "$ON" = crs ] && [ ! -d /usr/share/modsecurity-crs ]; then bash "$ROOT/scripts/modsecurity-crs.sh"; fi
declare -A PID=() PORT=([plain]=18096 [$ON]=18097)
stop_all() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT

write_upstream_conf "$RUN/upstream.conf" "$RUN" "$UP_PORT"
HEADER=()
if [ "$FEATURE" = jwt ]; then
    # A throwaway RSA key, its JWKS (served by the upstream nginx) and one token until 2100.
    b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
    mkdir -p "$RUN/www"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUN/idp.pem" 2>/dev/null
    n=$(openssl rsa -in "$RUN/idp.pem" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
    printf '{"keys":[{"kty":"RSA","kid":"bench","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$n" >"$RUN/www/jwks.json"
    head=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
    body=$(printf '{"iss":"http://127.0.0.1:%s","aud":"api","sub":"bench-user","scope":"orders.read","exp":4102444800}' "$UP_PORT" | b64url)
    sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign "$RUN/idp.pem" -binary | b64url)
    HEADER=(-H "Authorization: Bearer $head.$body.$sig")
    sed -i "s|location / {|location = /jwks.json { root $RUN/www; } location / {|" "$RUN/upstream.conf"
fi
if [ "$FEATURE" = validate ]; then
    # What the load's order looks like; every order it sends fits.
    cat >"$RUN/order.schema.json" <<'JSON'
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
fi
if [ "$FEATURE" = cors ]; then
    # Both gateways get the same request; the plain one has no policy and ignores Origin.
    HEADER=(-H "Origin: https://x1.apps.example.com")
fi
for variant in plain "$ON"; do
    limits="" route_limits="" all_only=""
    if [ "$variant" = cors ]; then
        limits=$'cors:\n  portal: { origins: ["https://portal.example.com", "https://admin.example.com", "https://*.apps.example.com"], methods: [GET, POST, PUT], headers: [Authorization, Content-Type], credentials: true, expose_headers: [X-Order-Version], max_age: 10m }\n'
        route_limits=", cors: portal"
    fi
    if [ "$variant" = waf ]; then
        limits=$'waf: { mode: block }\n'
    fi
    if [ "$variant" = validated ]; then
        # On the route the load's POSTs take, not on `/` (the readiness probe's GET has no body).
        all_only=", validate: { schema: \"$RUN/order.schema.json\" }"
    fi
    if [ "$variant" = traced ]; then
        limits=$'tracing: { otlp_endpoint: "http://127.0.0.1:'"$UP_PORT"$'", sample_ratio: 1.0 }\n'
    fi
    if [ "$variant" = crs ]; then
        limits=$'waf: { mode: block, rules: [], crs: { path: /usr/share/modsecurity-crs, paranoia_level: 1 } }\n'
    fi
    if [ "$variant" = rate_limited ] || [ "$variant" = rate_limited_redis ]; then
        limits=$'rate_limits:\n  per_ip: { rate: 100000000/s, burst: 100000000, key: client_ip }\n'
        route_limits=", rate_limits: [per_ip]"
    fi
    if [ "$variant" = rate_limited_redis ]; then
        limits+=$'state: { redis: "'"${REDIS_URL:-redis://127.0.0.1:6379}"$'", on_redis_error: deny }\n'
    fi
    auth="auth: none"
    if [ "$variant" = jwt ]; then
        limits=$'auth:\n  idp: { type: jwt, issuer: "http://127.0.0.1:'"$UP_PORT"$'", jwks_uri: "http://127.0.0.1:'"$UP_PORT"$'/jwks.json", audiences: [api], algorithms: [RS256] }\npolicies:\n  read: { scopes: [orders.read] }\n'
        auth="auth: { any: [idp] }, policy: read"
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
  - { name: all, match: { path: "/{*rest}" }, upstream: up, $auth$route_limits$all_only }
  - { name: root, match: { path: "/" }, upstream: up, $auth$route_limits }
EOF
done

taskset -c "$LOADGEN_CPU" nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" &
PID[upstream]=$!
for variant in plain "$ON"; do
    # shellcheck disable=SC2016
    taskset -c "$SERVER_CPU" env PORTCULLIS_LOG=warn bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$0" run -c "$1"' \
        "$BIN" "$RUN/$variant.yaml" >"$RUN/$variant.log" 2>&1 &
    PID[$variant]=$!
done
for port in $UP_PORT "${PORT[plain]}" "${PORT[$ON]}"; do
    for _ in $(seq 1 100); do curl -fsS --max-time 1 "${HEADER[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
done
if [ "$FEATURE" != validate ]; then
    curl -fsS --max-time 2 "${HEADER[@]}" "http://127.0.0.1:${PORT[$ON]}$TARGET" >/dev/null || { echo "the $ON gateway refuses the load's request" >&2; exit 1; }
fi
if [ -s "$RUN/body.json" ]; then
    curl -fsS --max-time 2 -H 'Content-Type: application/json' --data-binary "@$RUN/body.json" \
        "http://127.0.0.1:${PORT[$ON]}$TARGET" >/dev/null || { echo "the $ON gateway refuses the load's body" >&2; exit 1; }
fi

OUTF="$RUN/results.tsv"
printf 'variant\trep\trps\tcpu_us_per_req\terrors\tmean_latency_us\n' >"$OUTF"
for rep in $(seq 1 "$REPS"); do
    for variant in plain "$ON"; do
        f="$RUN/raw/${variant}_r$rep.txt"
        c0=$(cpu_ticks "${PID[$variant]}")
        taskset -c "$LOADGEN_CPU" wrk -t1 -c "$CONNS" -d "${DUR}s" "${HEADER[@]}" "${WRK_SCRIPT[@]}" "http://127.0.0.1:${PORT[$variant]}$TARGET" >"$f" 2>&1 || true
        c1=$(cpu_ticks "${PID[$variant]}")
        awk -v v="$variant" -v r="$rep" -v cpu="$(( (c1 - c0) * TICK_US ))" '
            /requests in/ { req = $1 } /Requests\/sec/ { rps = $2 }
            /Non-2xx/ { bad += $NF } /Socket errors/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
            /^ +Latency/ { lat = $2 + 0; if ($2 ~ /ms$/) lat *= 1000; else if ($2 ~ /[0-9]s$/) lat *= 1000000 }
            END { printf "%s\t%s\t%.0f\t%.2f\t%d\t%.1f\n", v, r, rps, (req ? cpu / req : 0), bad, lat }' "$f" | tee -a "$OUTF"
    done
done
awk -F'\t' -v on="$ON" -v label="$LABEL" -v goal="$GOAL" -v conns="$CONNS" 'NR > 1 { rps[$1] = rps[$1] " " $3; cpu[$1] = cpu[$1] " " $4; err += $5; lat[$1] = lat[$1] " " $6 }
    '"$MED_AWK"'
    END {
        print "| variant | req/s | CPU µs/req | mean latency µs |"; print "|---|---:|---:|---:|"
        printf "| plain proxy | %.0f | %.2f | %.1f |\n", med(rps["plain"]), med(cpu["plain"]), med(lat["plain"])
        printf "| %s | %.0f | %.2f | %.1f |\n", label, med(rps[on]), med(cpu[on]), med(lat[on])
        printf "\nrequests per CPU, %s / plain: %.3f (goal ≥ %s); errors: %d\n", on, med(cpu["plain"]) / med(cpu[on]), goal, err
        printf "mean latency added at %s connections: %.1f µs per request\n", conns, med(lat[on]) - med(lat["plain"])
    }' "$OUTF" | tee "$RUN/summary.md"
