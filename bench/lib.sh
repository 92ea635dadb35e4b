# Shared by bench/tls.sh and bench/features.sh (sourced, not run).

# The plain-HTTP nginx upstream both scripts proxy to: `write_upstream_conf FILE RUN PORT`.
write_upstream_conf() {
    cat >"$1" <<CONF
worker_processes 1; daemon off; pid $2/upstream.pid; error_log $2/upstream.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; client_body_temp_path $2/tmp/u;
  server { listen 127.0.0.1:$3 backlog=4096; location / { return 200 "ok"; } } }
CONF
}

# utime+stime, in clock ticks, of a process and its direct children (nginx's worker).
cpu_ticks() {
    local t=0 p v
    for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
        v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# awk function med(list): the median of a space-separated list (mawk has no asort).
# shellcheck disable=SC2034  # used by the scripts that source this file
MED_AWK='function med(list,   a, m, i, j, t) { m = split(list, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }'
