#!/usr/bin/env bash
# gRPC unary calls/s through latchd with a token against nginx grpc_pass without one (issue 14's
# benchmark), side by side on loopback:
#   nginx   cleartext http2 (prior knowledge), grpc_pass to the origin, no authentication (the
#           ceiling), sent the same token header (carried to the origin)
#   latchd  http2: prior_knowledge, an allow policy, a valid token (cf-access-token) on every
#           call, the origin as h2c://
# The origin is nghttpd (C, nghttp2-server): the unary method's answer is a file holding one
# gRPC message (5-byte prefix + protobuf), sent with `grpc-status: 0` as its trailer, so the
# origin costs little and the ratio measures the gateways. h2load drives unary calls: a fixed
# gRPC request body, content-type application/grpc, te: trailers, CLIENTS connections x STREAMS
# concurrent calls each. One worker each; ROUNDS rounds, the order turned every round, the median
# of the per-round ratios reported.
# Environment: DURATION (8), ROUNDS (3), CLIENTS (32), STREAMS (10), LATCHD (build/latchd).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-32}
STREAMS=${STREAMS:-10}
LATCHD=${LATCHD:-$PWD/build/latchd}
NGHTTPD=${NGHTTPD:-$(command -v nghttpd || echo /usr/sbin/nghttpd)}
METHOD=/demo.Echo/Say
for tool in "$LATCHD" "$NGINX" "$NGHTTPD" h2load nghttp; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done

GPORT=$(free_port); NPORT=$(free_port); LPORT=$(free_port)
mkdir -p "$TMP/origin/demo.Echo" "$TMP/latchd/state" "$TMP/nginx/logs"
# one gRPC message each way: uncompressed, 4 bytes of protobuf (field 1, "hi")
printf '\x00\x00\x00\x00\x04\x0a\x02hi' >"$TMP/origin/demo.Echo/Say"
cp "$TMP/origin/demo.Echo/Say" "$TMP/request.bin"
"$NGHTTPD" --no-tls -a 127.0.0.1 -d "$TMP/origin" --trailer 'grpc-status: 0' "$GPORT" \
  >"$TMP/origin.log" 2>&1 &
PIDS+=($!)

start_latchd_bench "{address: 127.0.0.1:$LPORT, http2: prior_knowledge}" "h2c://127.0.0.1:$GPORT"

{ nginx_conf_head '    http2_max_requests 1000000;'; cat <<EOF
    upstream origin { server 127.0.0.1:$GPORT; keepalive 64; keepalive_requests 1000000; }
    server { listen 127.0.0.1:$NPORT http2 backlog=4096;
             location / { grpc_pass grpc://origin; } }
}
EOF
} >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
PIDS+=($!)
wait_port "$GPORT"; wait_port "$NPORT"

call() { # $1 port, $2 token: "status grpc-status" of one unary call over h2c (nghttp shows trailers)
  local out
  out=$(nghttp -nv -d "$TMP/request.bin" -H ":authority: bench.localhost:$1" -H 'content-type: application/grpc' \
        -H 'te: trailers' ${2:+-H "cf-access-token: $2"} "http://127.0.0.1:$1$METHOD" 2>&1 || true)
  printf '%s %s\n' "$(grep -ao ':status: [0-9]*' <<<"$out" | head -1 | cut -d' ' -f2)" \
                   "$(grep -ao 'grpc-status: [0-9]*' <<<"$out" | tail -1 | cut -d' ' -f2)"
}
check() { # $1 name, $2 port: the origin's answer, grpc-status 0, through each
  local out
  out=$(call "$2" "$TOKEN")
  [[ $out == "200 0" ]] || { echo "bench: $1 answered '$out' to a unary call with a valid token" >&2; exit 1; }
}
check nginx "$NPORT"; check latchd "$LPORT"
out=$(call "$LPORT" "${TOKEN%??}AA")
[[ $out == "200 16" ]] || { echo "bench: latchd answered '$out' to a tampered token (want grpc-status 16)" >&2; exit 1; }

# h2load output -> "calls_per_s mean_ms errors"
run() { # $1 name
  local port out
  case $1 in nginx) port=$NPORT ;; latchd) port=$LPORT ;; esac
  out=$(h2load -c"$CLIENTS" -m"$STREAMS" -D"$DURATION" --warm-up-time=1 -d "$TMP/request.bin" \
        -H ":authority: bench.localhost:$port" -H 'content-type: application/grpc' -H 'te: trailers' \
        -H "cf-access-token: $TOKEN" "http://127.0.0.1:$port$METHOD" 2>&1)
  echo "$out" >>"$TMP/h2load.log"
  echo "$out" | awk '
    /^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") rps = $(i - 1) }
    /^requests:/ { err = $10 + $12 + $14 }
    /^status codes:/ { bad = $7 + $9 }
    /^time for request:/ { mean = $5; unit = mean; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", mean);
                           if (unit == "us") mean = mean / 1000; else if (unit == "s") mean = mean * 1000 }
    END { printf "%s %.3f %d\n", rps, mean, err + bad }'
}

SYSTEMS=(nginx latchd)
echo "bench: nginx :$NPORT (grpc_pass, no auth), latchd :$LPORT (token on every call), origin nghttpd :$GPORT;"
echo "       h2load unary $METHOD over h2c, -c$CLIENTS -m$STREAMS, ${DURATION}s x $ROUNDS rounds, the order turned each round"
declare -A RPS LAT
RATIOS=""
errors=0
for ((r = 0; r < ROUNDS; r++)); do
  declare -A NOW=()
  for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
    who=${SYSTEMS[(k + r) % ${#SYSTEMS[@]}]}
    read -r rps lat err < <(run "$who")
    NOW[$who]=$rps
    RPS[$who]+="$rps "; LAT[$who]+="$lat "; errors=$((errors + err))
    printf '  round %d  %-7s %10.0f calls/s  mean %7.2f ms  errors %d\n' "$((r + 1))" "$who" "$rps" "$lat" "$err"
  done
  RATIOS+="$(ratio "${NOW[latchd]}" "${NOW[nginx]}") "
done
kill -0 "$LATCHD_PID" 2>/dev/null || { echo "bench: latchd died" >&2; exit 1; }
# a refusal is a 200 too (grpc-status 16): every call measured must have been admitted
refused=$(grep -vc '"decision":"allow"' "$TMP/latchd/requests.log" || true)
[[ $refused -le 1 ]] || { echo "bench: latchd refused $refused calls (see its request log)" >&2; exit 1; }
echo
echo "=========== gRPC unary over h2c (loopback, 1 worker each, h2load -c$CLIENTS -m$STREAMS) ==========="
printf '%-8s %12s %12s\n' "" "calls/s" "mean ms"
for who in "${SYSTEMS[@]}"; do
  printf '%-8s %12.0f %12.2f\n' "$who" "$(median ${RPS[$who]})" "$(median ${LAT[$who]})"
done
echo
printf 'latchd/nginx  %6.2fx   median of the per-round ratios [%s]\n' "$(median $RATIOS)" "${RATIOS% }"
echo "h2load errors (failed, errored, timeout, non-2xx): $errors"
echo "target: latchd >= 1.0x nginx grpc_pass (nginx authenticates nothing)"
echo "=================================================================================="
