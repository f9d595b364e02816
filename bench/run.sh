#!/usr/bin/env bash
# latchd against nginx as a plain reverse proxy, side by side, on loopback (make bench).
#
# One origin (nginx, `return 200` of a ~100-byte body, its own worker). In front of it, in turn:
# nginx as a proxy (upstream keepalive 64, 1 worker, access_log to a file) and latchd (a bypass
# app, workers: 1, request log to a file). wrk -c 64 -t 1 drives each for DURATION seconds,
# alternating nginx/latchd for ROUNDS rounds; then N idle keep-alive client connections (each
# completed one request) are opened against each and the RSS growth per connection is measured.
#
# Environment: DURATION (10), ROUNDS (3), CONNS (64), IDLE_N (10000), LATCHD (build/latchd).
# Every process started here is stopped here, by its pid, on exit or interruption.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
IDLE_N=${IDLE_N:-10000}
LATCHD=${LATCHD:-$PWD/build/latchd}
source bench/lib.sh

for tool in "$LATCHD" "$NGINX" wrk "$PY"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x $tool ]]; then
    echo "bench: $tool not found (run make deps && make)" >&2
    exit 1
  fi
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Raise the fd limit for the idle-connection test (client, nginx and latchd all hold IDLE_N).
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < 1048576)); then ulimit -n "$hard"; else ulimit -n 1048576; fi
fdmax=$(ulimit -n)
if ((IDLE_N + 512 > fdmax)); then
  IDLE_N=$((fdmax - 512))
  echo "bench: fd limit $fdmax, idle connections reduced to $IDLE_N" >&2
fi

BODY=$(printf 'latch-bench-%.0s' $(seq 8) | head -c 100)
OPORT=$(free_port)
NPORT=$(free_port)
LPORT=$(free_port)

mkdir -p "$TMP/origin/logs" "$TMP/nginx/logs" "$TMP/latchd/state"
nginx_common() {  # $1 = prefix
  cat <<EOF
user root;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
worker_rlimit_nofile $((fdmax));
events { worker_connections $((IDLE_N + 1024)); multi_accept on; }
EOF
}
nginx_temp() {
  cat <<EOF
    client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
EOF
}

{
  nginx_common "$TMP/origin"
  echo "worker_processes 1;"
  echo "http {"
  nginx_temp "$TMP/origin"
  cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$OPORT backlog=4096;
        location / { default_type text/plain; return 200 "$BODY"; }
    }
}
EOF
} >"$TMP/origin/nginx.conf"

{
  nginx_common "$TMP/nginx"
  echo "worker_processes 1;"
  echo "http {"
  nginx_temp "$TMP/nginx"
  cat <<EOF
    log_format main '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent \$request_time';
    access_log $TMP/nginx/logs/access.log main;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream origin { server 127.0.0.1:$OPORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NPORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"

cat >"$TMP/latchd/latch.yaml" <<EOF
listen: [{address: 127.0.0.1:$LPORT}]
workers: 1
state_dir: $TMP/latchd/state
auth_domain: auth.localhost:$LPORT
log: {requests: $TMP/latchd/requests.log, auth: $TMP/latchd/auth.log}
timeouts: {idle: 5m, header: 30s}
max_connections_per_client: 0   # the idle test holds IDLE_N connections from one address
apps:
  - name: bench
    domains: [bench.localhost]
    origin: http://127.0.0.1:$OPORT
    policies: [{name: open, decision: bypass, include: [{everyone: {}}]}]
EOF

"$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" 2>"$TMP/origin/stderr" &
PIDS+=($!)
ORIGIN_PID=$!
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
PIDS+=($!)
NGINX_PID=$!
"$LATCHD" --config "$TMP/latchd/latch.yaml" >"$TMP/latchd/stdout" 2>"$TMP/latchd/stderr" &
PIDS+=($!)
LATCHD_PID=$!
wait_port "$OPORT"
wait_port "$NPORT"
wait_port "$LPORT" || { echo "latchd did not start:" >&2; cat "$TMP/latchd/stderr" >&2; exit 1; }

# sanity: both proxies answer 200 with the origin's body
for port in "$NPORT" "$LPORT"; do
  got=$(curl -sS --max-time 5 -H "Host: bench.localhost:$port" "http://127.0.0.1:$port/")
  if [[ $got != "$BODY" ]]; then
    echo "bench: proxy on $port answered '$got', expected the origin's body" >&2
    exit 1
  fi
done

# wrk output -> "req_per_s p99_ms errors"
run_wrk() {  # $1 = port
  local out
  out=$(wrk -t 1 -c "$CONNS" -d "${DURATION}s" --latency --timeout 5s \
        -H "Host: bench.localhost:$1" "http://127.0.0.1:$1/" 2>&1)
  echo "$out" >>"$TMP/wrk.log"
  echo "$out" | wrk_summary
}

echo "bench: origin nginx :$OPORT, nginx proxy :$NPORT, latchd :$LPORT; wrk -t1 -c$CONNS ${DURATION}s x $ROUNDS rounds"
# warm-up
wrk -t 1 -c "$CONNS" -d 2s -H "Host: bench.localhost:$NPORT" "http://127.0.0.1:$NPORT/" >/dev/null
wrk -t 1 -c "$CONNS" -d 2s -H "Host: bench.localhost:$LPORT" "http://127.0.0.1:$LPORT/" >/dev/null

declare -a N_RPS N_P99 L_RPS L_P99
errors=0
for ((r = 1; r <= ROUNDS; r++)); do
  read -r rps p99 err < <(run_wrk "$NPORT")
  N_RPS+=("$rps"); N_P99+=("$p99"); errors=$((errors + err))
  printf '  round %d  nginx   %10.0f req/s  p99 %7.2f ms  errors %d\n' "$r" "$rps" "$p99" "$err"
  read -r rps p99 err < <(run_wrk "$LPORT")
  L_RPS+=("$rps"); L_P99+=("$p99"); errors=$((errors + err))
  printf '  round %d  latchd  %10.0f req/s  p99 %7.2f ms  errors %d\n' "$r" "$rps" "$p99" "$err"
done
kill -0 "$LATCHD_PID" 2>/dev/null || { echo "bench: latchd died during the load" >&2; tail "$TMP/latchd/stderr" >&2; exit 1; }

n_rps=$(median "${N_RPS[@]}"); l_rps=$(median "${L_RPS[@]}")
n_p99=$(median "${N_P99[@]}"); l_p99=$(median "${L_P99[@]}")

# ---- memory per idle keep-alive connection ----
cat >"$TMP/idle.py" <<'PYEOF'
# Opens N connections, completes one request on each (keep-alive) and keeps them all open
# until stdin closes. Prints "ready <number answered 200>" once every connection is idle.
import selectors, socket, sys
port, n, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
req = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

def complete(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(body) >= int(v)
    return True

sel = selectors.DefaultSelector()
socks, pending, ok, opened = [], {}, 0, 0
while opened < n or pending:
    while opened < n and len(pending) < 256:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        pending[s] = b""
        socks.append(s)
        opened += 1
    events = sel.select(timeout=10)
    if not events:
        sys.exit(f"no progress: {len(pending)} responses missing")
    for key, _ in events:
        s = key.fileobj
        try:
            d = s.recv(65536)
        except BlockingIOError:
            continue
        pending[s] += d
        if not d or complete(pending[s]):
            ok += pending[s].startswith(b"HTTP/1.1 200")
            sel.unregister(s)
            del pending[s]
print("ready", ok, flush=True)
sys.stdin.read()
PYEOF

# Sets IDLE_BPC (RSS bytes per idle connection), IDLE_OK, IDLE_BEFORE, IDLE_AFTER (KiB).
idle_test() {  # $1 = name, $2 = port, $3 = pid whose RSS is measured
  local line cpid
  IDLE_BPC=nan IDLE_OK=0 IDLE_AFTER="?"
  IDLE_BEFORE=$(rss_kib "$3")
  coproc IDLE { exec "$PY" "$TMP/idle.py" "$2" "$IDLE_N" "bench.localhost:$2" 2>"$TMP/idle-$1.err"; }
  cpid=$IDLE_PID
  PIDS+=("$cpid")
  if ! read -r -t 180 line <&"${IDLE[0]}"; then
    echo "bench: idle client for $1 did not finish:" >&2
    tail -3 "$TMP/idle-$1.err" >&2
  else
    IDLE_OK=${line#ready }
    sleep 1
    IDLE_AFTER=$(rss_kib "$3")
    IDLE_BPC=$(( (IDLE_AFTER - IDLE_BEFORE) * 1024 / IDLE_N ))
  fi
  kill -TERM "$cpid" 2>/dev/null || true
  wait "$cpid" 2>/dev/null || true
}

worker=$(pgrep -P "$NGINX_PID" | head -1)
idle_test nginx "$NPORT" "$worker"
n_idle=$IDLE_BPC n_ok=$IDLE_OK n_before=$IDLE_BEFORE n_after=$IDLE_AFTER
sleep 1
idle_test latchd "$LPORT" "$LATCHD_PID"
l_idle=$IDLE_BPC l_ok=$IDLE_OK l_before=$IDLE_BEFORE l_after=$IDLE_AFTER
kill -0 "$LATCHD_PID" 2>/dev/null || { echo "bench: latchd died during the idle test" >&2; exit 1; }

ratio=$(ratio "$l_rps" "$n_rps")
echo
echo "==================== latchd vs nginx (loopback, 1 worker each) ===================="
printf '%-34s %14s %14s\n' "" "nginx" "latchd"
for ((r = 0; r < ROUNDS; r++)); do
  printf '%-34s %14.0f %14.0f\n' "req/s, round $((r + 1))" "${N_RPS[r]}" "${L_RPS[r]}"
done
printf '%-34s %14.0f %14.0f\n' "req/s, median" "$n_rps" "$l_rps"
printf '%-34s %14.2f %14.2f\n' "p99 latency ms, median of rounds" "$n_p99" "$l_p99"
printf '%-34s %14s %14s\n' "idle conns completed (of $IDLE_N)" "$n_ok" "$l_ok"
printf '%-34s %14s %14s\n' "RSS before/after idle, KiB" "$n_before/$n_after" "$l_before/$l_after"
printf '%-34s %14s %14s\n' "RSS per idle keep-alive conn, B" "$n_idle" "$l_idle"
printf '%-34s %29s\n' "throughput ratio latchd/nginx" "$ratio"
printf '%-34s %29s\n' "wrk errors (non-2xx, socket)" "$errors"
echo "==================================================================================="
