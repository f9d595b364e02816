#!/usr/bin/env bash
# HTTP/2 to clients over TLS, side by side on loopback (issue 14's benchmark):
#   nginx   http2 + ssl, plain proxy_pass to the origin, no authentication (the ceiling), sent
#           the same token header (carried to the origin): every system gets the same request
#   h2o     Debian's h2o as a plain proxy (proxy.reverse.url), no authentication (reported)
#   latchd  an allow policy, a valid token on every request (cf-access-token)
# One origin (nginx, HTTP/1.1), one worker/thread each; h2load over TLS (ALPN h2), CLIENTS
# connections x STREAMS concurrent streams each; ROUNDS rounds, the order of the systems turned
# every round, the median of the per-round ratios reported.
# Environment: DURATION (8), ROUNDS (3), CLIENTS (64), STREAMS (10), LATCHD (build/latchd).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
STREAMS=${STREAMS:-10}
LATCHD=${LATCHD:-$PWD/build/latchd}
H2O=${H2O:-$(command -v h2o || echo /usr/bin/h2o)}

OPORT=$(free_port); NPORT=$(free_port); HPORT=$(free_port); LPORT=$(free_port)
start_origin "$OPORT" "$TMP/origin"
mkdir -p "$TMP/latchd/state" "$TMP/nginx/logs" "$TMP/h2o"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
  -subj /CN=bench.localhost -addext subjectAltName=DNS:bench.localhost >/dev/null 2>&1

start_latchd_bench "{address: 127.0.0.1:$LPORT, tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}" "http://127.0.0.1:$OPORT"

{ nginx_conf_head '    http2_max_requests 1000000;'; cat <<EOF
    upstream origin { server 127.0.0.1:$OPORT; keepalive 1024; }   # as many idle as latchd keeps
    server { listen 127.0.0.1:$NPORT ssl http2 backlog=4096;
             ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;
             location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOF
} >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
PIDS+=($!)

cat >"$TMP/h2o/h2o.conf" <<EOF
num-threads: 1
user: $(id -un)
pid-file: $TMP/h2o/h2o.pid
error-log: $TMP/h2o/error.log
access-log: $TMP/h2o/access.log
listen:
  host: 127.0.0.1
  port: $HPORT
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$OPORT/
EOF
"$H2O" -c "$TMP/h2o/h2o.conf" >"$TMP/h2o/stdout" 2>&1 &
PIDS+=($!)
wait_port "$OPORT"; wait_port "$NPORT"; wait_port "$HPORT"

check() { # $1 name, $2 port; expect the origin's 200 over HTTP/2
  local out
  out=$(curl -sk --http2 -o /dev/null -w '%{http_code} %{http_version}' --resolve "bench.localhost:$2:127.0.0.1" \
        -H "cf-access-token: $TOKEN" "https://bench.localhost:$2/")
  [[ $out == "200 2" ]] || { echo "bench: $1 answered '$out' with a valid token" >&2; exit 1; }
}
check nginx "$NPORT"; check h2o "$HPORT"; check latchd "$LPORT"
code=$(curl -sk --http2 -o /dev/null -w '%{http_code}' --resolve "bench.localhost:$LPORT:127.0.0.1" \
       -H "cf-access-token: ${TOKEN%??}AA" "https://bench.localhost:$LPORT/")
[[ $code == 401 || $code == 403 ]] || { echo "bench: latchd accepted a tampered token ($code)" >&2; exit 1; }

# h2load output -> "req_per_s p99_ms(unavailable: mean) errors"
run() { # $1 name
  local port out
  case $1 in nginx) port=$NPORT ;; h2o) port=$HPORT ;; latchd) port=$LPORT ;; esac
  out=$(h2load -c"$CLIENTS" -m"$STREAMS" -D"$DURATION" --warm-up-time=1 -H ":authority: bench.localhost:$port" \
        -H "cf-access-token: $TOKEN" "https://127.0.0.1:$port/" 2>&1)
  echo "$out" >>"$TMP/h2load.log"
  echo "$out" | awk '
    /^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") rps = $(i - 1) }
    /^requests:/ { err = $10 + $12 + $14 }
    /^status codes:/ { bad = $7 + $9 }
    /^time for request:/ { mean = $5; unit = mean; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", mean);
                           if (unit == "us") mean = mean / 1000; else if (unit == "s") mean = mean * 1000 }
    END { printf "%s %.3f %d\n", rps, mean, err + bad }'
}

SYSTEMS=(nginx h2o latchd)
echo "bench: nginx :$NPORT (http2, no auth), h2o :$HPORT (plain proxy), latchd :$LPORT (token on every request);"
echo "       h2load over TLS, -c$CLIENTS -m$STREAMS, ${DURATION}s x $ROUNDS rounds, the order turned each round"
declare -A RPS LAT RATIO
errors=0
for ((r = 0; r < ROUNDS; r++)); do
  declare -A NOW=()
  for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
    who=${SYSTEMS[(k + r) % ${#SYSTEMS[@]}]}
    read -r rps lat err < <(run "$who")
    NOW[$who]=$rps
    RPS[$who]+="$rps "; LAT[$who]+="$lat "; errors=$((errors + err))
    printf '  round %d  %-7s %10.0f req/s  mean %7.2f ms  errors %d\n' "$((r + 1))" "$who" "$rps" "$lat" "$err"
  done
  RATIO[latchd/nginx]+="$(ratio "${NOW[latchd]}" "${NOW[nginx]}") "
  RATIO[latchd/h2o]+="$(ratio "${NOW[latchd]}" "${NOW[h2o]}") "
done
kill -0 "$LATCHD_PID" 2>/dev/null || { echo "bench: latchd died" >&2; exit 1; }
echo
echo "=========== HTTP/2 over TLS (loopback, 1 worker/thread each, h2load -c$CLIENTS -m$STREAMS) ==========="
printf '%-8s %12s %12s\n' "" "req/s" "mean ms"
for who in "${SYSTEMS[@]}"; do
  printf '%-8s %12.0f %12.2f\n' "$who" "$(median ${RPS[$who]})" "$(median ${LAT[$who]})"
done
echo
echo "median of the per-round ratios (each round's, in brackets):"
for k in latchd/nginx latchd/h2o; do
  printf '  %-14s %6.2fx   [%s]\n' "$k" "$(median ${RATIO[$k]})" "${RATIO[$k]% }"
done
echo "h2load errors (failed, errored, timeout, non-2xx): $errors"
echo "target: latchd >= 1.0x nginx (nginx authenticates nothing); h2o reported"
echo "======================================================================================="
