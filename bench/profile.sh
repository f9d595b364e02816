#!/usr/bin/env bash
# Instructions per request on latchd's hot path, counted by valgrind's callgrind: the same
# number on a busy or a quiet machine (a count, not a time), so a change to the request path
# can be judged by one run. Four cases, REQUESTS keep-alive requests each on one connection to
# an nginx origin, with the daemon's start-up cost (a run without requests) subtracted:
#   bypass          a bypass app, no token header
#   bypass+token    the same with an 884-byte cf-access-token header (carried, not needed)
#   allow+token     an allow policy, the same valid token every time (the verified-token cache)
#   allow+new       an allow policy, a new valid token every time (RSA verification each time)
# and the TOP functions of the allow+token case (self cost, per request).
# Environment: REQUESTS (2000), TOP (15), LATCHD (build/latchd). Needs valgrind, nginx, python3-jwt.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
REQUESTS=${REQUESTS:-2000}
TOP=${TOP:-15}
LATCHD=${LATCHD:-$PWD/build/latchd}
command -v valgrind >/dev/null || { echo "bench: valgrind not found (apt-get install valgrind)" >&2; exit 1; }

OPORT=$(free_port); LPORT=$(free_port)
start_origin "$OPORT" "$TMP/origin"
mkdir -p "$TMP/l/state"
cat >"$TMP/l/latch.yaml" <<EOF
listen: [{address: 127.0.0.1:$LPORT}]
workers: 1
state_dir: $TMP/l/state
auth_domain: auth.localhost:$LPORT
max_connections_per_client: 0
log: {requests: $TMP/l/requests.log, auth: $TMP/l/auth.log}
apps:
  - name: bench
    domains: [bench.localhost]
    origin: http://127.0.0.1:$OPORT
    policies: [{name: staff, decision: allow, include: [{email_domain: example.com}]}]
  - name: open
    domains: [open.localhost]
    origin: http://127.0.0.1:$OPORT
    policies: [{name: all, decision: bypass, include: [{everyone: {}}]}]
EOF
"$LATCHD" --config "$TMP/l/latch.yaml" >/dev/null 2>&1 & pid=$!
wait_port "$LPORT"
"$LATCHD" token issue --config "$TMP/l/latch.yaml" --app bench --email bench@example.com >"$TMP/token" 2>/dev/null
AUD=$(curl -s -H "Host: bench.localhost" "http://127.0.0.1:$LPORT/cdn-cgi/access/app" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["aud"])')
KEY=$(ls "$TMP"/l/state/keys/*.pem | head -1)
kill -TERM "$pid"; wait "$pid" || true
wait_port "$OPORT"
"$PY" - "$KEY" "$AUD" "$REQUESTS" "http://auth.localhost:$LPORT" "$TMP/tokens.txt" <<'PYEOF'
import jwt, sys, time, os
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
aud, n, iss, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
kid = os.path.basename(sys.argv[1])[:-4]
now = int(time.time())
with open(out, "w") as f:
    for i in range(n):
        claims = {"aud": [aud], "email": "u%d@example.com" % i, "sub": "s%d" % i, "iss": iss, "iat": now,
                  "nbf": now, "exp": now + 86400, "type": "app", "identity_nonce": "%032x" % i,
                  "groups": [], "amr": []}
        f.write(jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}) + "\n")
PYEOF

# $1 case -> instructions of the whole run (start, REQUESTS requests, drain)
count() {
  local out="$TMP/cg.$1" host=open.localhost tokens=""
  case $1 in
    bypass+token) tokens="$TMP/token" ;;
    allow+token) host=bench.localhost; tokens="$TMP/token" ;;
    allow+new) host=bench.localhost; tokens="$TMP/tokens.txt" ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$out" "$LATCHD" --config "$TMP/l/latch.yaml" >/dev/null 2>&1 &
  local vp=$!
  PIDS+=($vp)
  wait_port "$LPORT"
  if [[ $1 != start ]]; then
    "$PY" - "$LPORT" "$host" "$tokens" "$REQUESTS" <<'PYEOF'
import socket, sys
port, host, tokens, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
toks = [l.strip() for l in open(tokens)] if tokens else [""]
s = socket.create_connection(("127.0.0.1", port))
for i in range(n + 1):  # the first request (the connection's first) is not counted
    t = toks[i % len(toks)]
    s.sendall((f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\nAccept: */*\r\n" +
               (f"cf-access-token: {t}\r\n" if t else "") + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    cl = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < cl:
        rest += s.recv(65536)
s.close()
PYEOF
  fi
  kill -TERM "$vp"; wait "$vp" || true
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

base=$(count start)
echo "bench: callgrind, $REQUESTS keep-alive requests per case, start-up ($base instructions) subtracted"
printf '%-14s %14s\n' case "instr/request"
for c in bypass bypass+token allow+token allow+new; do
  total=$(count "$c")
  printf '%-14s %14.0f\n' "$c" "$(awk -v t="$total" -v b="$base" -v n="$REQUESTS" 'BEGIN { print (t - b) / (n + 1) }')"
done
for c in allow+token allow+new; do
  echo
  echo "top functions of $c (self instructions per request, start-up subtracted):"
  "$PY" - "$TMP/cg.start" "$TMP/cg.$c" "$REQUESTS" "$TOP" <<'PYEOF'
import re, subprocess, sys
def costs(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                         capture_output=True, text=True).stdout
    out = out.split("file:function", 1)[1].split("\n\n", 1)[0]  # the summary: self costs
    c = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9,]+) \([ 0-9.]+%\)\s+(\S.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^.*/", "", m.group(2))
            c[name] = c.get(name, 0) + int(m.group(1).replace(",", ""))
    return c
base, run = costs(sys.argv[1]), costs(sys.argv[2])
n, top = int(sys.argv[3]) + 1, int(sys.argv[4])
diff = sorted(((v - base.get(k, 0)) / n, k) for k, v in run.items())
for v, k in reversed(diff[-top:]):
    print("  %8.0f  %s" % (v, k))
PYEOF
done
