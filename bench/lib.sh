# Shared pieces of the bench scripts (sourced): process bookkeeping, ports, wrk parsing.
# Every process a script starts goes into PIDS and is stopped by its pid on exit.

PY=${PYTHON:-/usr/bin/python3}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
TMP=$(mktemp -d /tmp/latch-bench.XXXXXX)
PIDS=()

bench_cleanup() {
  local rc=$?
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local p=${PIDS[i]}
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"
  exit $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  "$PY" - "$1" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1]); deadline = time.time() + 15
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("port %d never accepted" % port)
PYEOF
}

# wrk output -> "req_per_s p99_ms errors"
wrk_summary() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v);
               if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000;
               p99 = v }
    /Non-2xx or 3xx responses:/ { err += $NF }
    /Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { x = $i; sub(/,/, "", x); err += x } }
    END { printf "%s %.3f %d\n", rps, p99, err }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

# An nginx origin answering 200 with a ~100-byte body on $1 (prefix $2).
start_origin() {
  mkdir -p "$2/logs"
  cat >"$2/nginx.conf" <<EOF
user root;
daemon off;
pid $2/nginx.pid;
error_log $2/logs/error.log warn;
worker_processes 1;
events { worker_connections 4096; }
http {
    client_body_temp_path $2/body; proxy_temp_path $2/proxy; fastcgi_temp_path $2/fastcgi;
    uwsgi_temp_path $2/uwsgi; scgi_temp_path $2/scgi;
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server { listen 127.0.0.1:$1 backlog=4096; location / { default_type text/plain; return 200 "$(printf 'latch-bench-%.0s' $(seq 8) | head -c 100)"; } }
}
EOF
  "$NGINX" -p "$2" -c "$2/nginx.conf" 2>"$2/stderr" &
  PIDS+=($!)
}

# latchd with one worker and one app, "bench" on bench.localhost, in front of ORIGIN ($2), that
# admits example.com people; LISTEN ($1) is the listener's YAML mapping. Sets LATCHD_PID and
# TOKEN (a valid app token for bench@example.com). Needs LATCHD and LPORT.
start_latchd_bench() {
  mkdir -p "$TMP/latchd/state"
  cat >"$TMP/latchd/latch.yaml" <<EOF2
listen: [$1]
workers: 1
state_dir: $TMP/latchd/state
auth_domain: auth.localhost:$LPORT
session_duration: 24h
log: {requests: $TMP/latchd/requests.log, auth: $TMP/latchd/auth.log}
apps:
  - name: bench
    domains: [bench.localhost]
    origin: $2
    policies: [{name: staff, decision: allow, include: [{email_domain: example.com}]}]
EOF2
  "$LATCHD" --config "$TMP/latchd/latch.yaml" >"$TMP/latchd/stdout" 2>"$TMP/latchd/stderr" &
  PIDS+=($!)
  LATCHD_PID=$!
  wait_port "$LPORT"
  TOKEN=$("$LATCHD" token issue --config "$TMP/latchd/latch.yaml" --app bench --email bench@example.com 2>/dev/null)
}

# The start of the anchors' nginx.conf (one worker, logs and temporary files under $TMP/nginx,
# keep-alive without end), open inside `http {`: the caller writes its upstream and server and
# the closing brace. $1: more lines for the http block.
nginx_conf_head() {
  mkdir -p "$TMP/nginx/logs"
  cat <<EOF2
user root;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
worker_processes 1;
events { worker_connections 4096; }
http {
    client_body_temp_path $TMP/nginx/body; proxy_temp_path $TMP/nginx/proxy; fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi; scgi_temp_path $TMP/nginx/scgi;
    access_log $TMP/nginx/logs/access.log;
    keepalive_requests 1000000;
${1:-}
EOF2
}
