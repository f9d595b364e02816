#!/usr/bin/env bash
# Authentication on every request, side by side on loopback (issue 3's benchmark):
#   nginx      plain proxy_pass, no authentication (the ceiling), sent the same token header
#              (which it carries to the origin): every system gets the same request
#   haproxy    2.6 verifying the same RS256 JWT per request with jwt_verify (+ alg, aud, exp)
#   latchd     an allow policy, the same valid token on every request (verified-token cache)
#   latchd-new a new valid token on every request (cache misses: RSA verification each time)
#   haproxy-new the same stream of new tokens against HAProxy: the same (Lua-driven, costlier)
#              client as latchd-new, the fair anchor for it
# One origin (nginx), one worker/thread each, wrk -t1 -c64; ROUNDS rounds, the order of the
# systems turned every round, the median of the per-round ratios reported.
# Environment: DURATION (8), ROUNDS (6), CONNS (64), TOKENS (16384: distinct tokens cycled for
# latchd-new, more than the 4096-slot cache holds), LATCHD (build/latchd).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-6}
CONNS=${CONNS:-64}
TOKENS=${TOKENS:-16384}
LATCHD=${LATCHD:-$PWD/build/latchd}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}

OPORT=$(free_port); NPORT=$(free_port); HPORT=$(free_port); LPORT=$(free_port)
start_origin "$OPORT" "$TMP/origin"

# latchd first: its key signs the tokens everybody verifies
mkdir -p "$TMP/latchd/state" "$TMP/nginx/logs" "$TMP/haproxy"
start_latchd_bench "{address: 127.0.0.1:$LPORT}" "http://127.0.0.1:$OPORT"
AUD=$(curl -s -H "Host: bench.localhost:$LPORT" "http://127.0.0.1:$LPORT/cdn-cgi/access/app" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["aud"])')
KEY=$(ls "$TMP"/latchd/state/keys/*.pem | head -1)
openssl pkey -in "$KEY" -pubout -out "$TMP/haproxy/pub.pem" 2>/dev/null

# distinct valid tokens for the cache-miss run, signed with the same key (python3-jwt)
"$PY" - "$KEY" "$AUD" "$TOKENS" "http://auth.localhost:$LPORT" "$TMP/tokens.txt" <<'PYEOF'
import jwt, sys, time, os
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)  # parsed once
aud, n, iss, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
kid = os.path.basename(sys.argv[1])[:-4]
now = int(time.time())
with open(out, "w") as f:
    for i in range(n):
        claims = {"aud": [aud], "email": "u%d@example.com" % i, "sub": "s%d" % i, "iss": iss,
                  "iat": now, "nbf": now, "exp": now + 86400, "type": "app", "identity_nonce": "%032x" % i,
                  "groups": [], "amr": []}
        f.write(jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}) + "\n")
PYEOF
for port in "$LPORT" "$HPORT"; do
  cat >"$TMP/cycle-$port.lua" <<EOF
local tokens = {}
for line in io.lines("$TMP/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/", { ["Host"] = "bench.localhost:$port", ["cf-access-token"] = tokens[i] })
end
EOF
done

{ nginx_conf_head; cat <<EOF
    upstream origin { server 127.0.0.1:$OPORT; keepalive 64; }
    server { listen 127.0.0.1:$NPORT backlog=4096;
             location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOF
} >"$TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
PIDS+=($!)

cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$HPORT
    http-request set-var(txn.bearer) req.hdr(cf-access-token)
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny unless { var(txn.alg) -m str RS256 }
    http-request deny unless { var(txn.bearer),jwt_payload_query('\$.aud[0]') -m str $AUD }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request deny unless { var(txn.bearer),jwt_verify(txn.alg,"$TMP/haproxy/pub.pem") -m int 1 }
    default_backend be
backend be
    http-reuse always
    server o 127.0.0.1:$OPORT
EOF
"$HAPROXY" -f "$TMP/haproxy/haproxy.cfg" -db >"$TMP/haproxy/stdout" 2>&1 &
PIDS+=($!)
wait_port "$OPORT"; wait_port "$NPORT"; wait_port "$HPORT"

check() { # $1 name, $2 port, $3 token ("" none); expect the origin's 200
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: bench.localhost:$2" ${3:+-H "cf-access-token: $3"} "http://127.0.0.1:$2/")
  [[ $code == 200 ]] || { echo "bench: $1 answered $code with a valid token" >&2; cat "$TMP/haproxy/stdout" >&2; exit 1; }
}
check nginx "$NPORT" ""
check haproxy "$HPORT" "$TOKEN"
check latchd "$LPORT" "$TOKEN"
for who in haproxy latchd; do  # and a tampered token is refused by both
  port=$HPORT; [[ $who == latchd ]] && port=$LPORT
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: bench.localhost:$port" -H "cf-access-token: ${TOKEN%??}AA" "http://127.0.0.1:$port/")
  [[ $code == 401 || $code == 403 ]] || { echo "bench: $who accepted a tampered token ($code)" >&2; exit 1; }
done

run() { # $1 name -> "rps p99 err"
  local out
  case $1 in
    nginx) out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: bench.localhost:$NPORT" -H "cf-access-token: $TOKEN" "http://127.0.0.1:$NPORT/") ;;
    haproxy) out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "cf-access-token: $TOKEN" "http://127.0.0.1:$HPORT/") ;;
    latchd) out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: bench.localhost:$LPORT" -H "cf-access-token: $TOKEN" "http://127.0.0.1:$LPORT/") ;;
    latchd-new) out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$TMP/cycle-$LPORT.lua" "http://127.0.0.1:$LPORT/") ;;
    haproxy-new) out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$TMP/cycle-$HPORT.lua" "http://127.0.0.1:$HPORT/") ;;
  esac
  echo "$out" >>"$TMP/wrk.log"
  echo "$out" | wrk_summary
}

SYSTEMS=(nginx haproxy latchd haproxy-new latchd-new)
echo "bench: nginx :$NPORT (no auth), haproxy :$HPORT (jwt_verify), latchd :$LPORT; wrk -t1 -c$CONNS ${DURATION}s x $ROUNDS rounds"
echo "       the order of systems turns each round (the machine drifts in phases); ratios are taken"
echo "       within a round, and the median of the per-round ratios is reported"
declare -A RPS P99 RATIO
errors=0
for ((r = 0; r < ROUNDS; r++)); do
  declare -A NOW=()
  for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
    who=${SYSTEMS[(k + r) % ${#SYSTEMS[@]}]}
    read -r rps p99 err < <(run "$who")
    NOW[$who]=$rps
    RPS[$who]+="$rps "; P99[$who]+="$p99 "; errors=$((errors + err))
    printf '  round %d  %-11s %10.0f req/s  p99 %7.2f ms  errors %d\n' "$((r + 1))" "$who" "$rps" "$p99" "$err"
  done
  RATIO[latchd/nginx]+="$(ratio "${NOW[latchd]}" "${NOW[nginx]}") "
  RATIO[latchd/haproxy]+="$(ratio "${NOW[latchd]}" "${NOW[haproxy]}") "
  RATIO[latchd-new/haproxy-new]+="$(ratio "${NOW[latchd-new]}" "${NOW[haproxy-new]}") "
  RATIO[latchd-new/nginx]+="$(ratio "${NOW[latchd-new]}" "${NOW[nginx]}") "
done
kill -0 "$LATCHD_PID" 2>/dev/null || { echo "bench: latchd died" >&2; exit 1; }
echo
echo "=============== authentication per request (loopback, 1 worker/thread each) ==============="
printf '%-12s %12s %10s\n' "" "req/s" "p99 ms"
for who in "${SYSTEMS[@]}"; do
  printf '%-12s %12.0f %10.2f\n' "$who" "$(median ${RPS[$who]})" "$(median ${P99[$who]})"
done
echo
echo "median of the per-round ratios (each round's ratios, in brackets):"
for k in latchd/nginx latchd/haproxy latchd-new/haproxy-new latchd-new/nginx; do
  printf '  %-24s %6.2fx   [%s]\n' "$k" "$(median ${RATIO[$k]})" "${RATIO[$k]% }"
done
echo "wrk errors (non-2xx, socket): $errors"
echo "targets: latchd >= 1.0x nginx and >= 2x haproxy; latchd-new >= 1.2x haproxy-new"
echo "==========================================================================================="
