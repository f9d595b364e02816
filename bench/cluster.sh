#!/usr/bin/env bash
# Several nodes sharing one Redis (issue 6, SPEC.md §10), on loopback with a real redis-server:
#
#  1. Proxy throughput, store: redis against store: embedded (otherwise the same config), wrk
#     with a valid token, one worker each, alternating, ROUNDS rounds. Token verification never
#     touches the store, so the ratio should be 1.00 within noise.
#  2. The handoff: from the confirming POST (on node A) to the answer of the CLI's long poll,
#     with the poll parked on node A itself and on node B (woken through Redis pub/sub). RUNS
#     handoffs each, alternating; medians.
#
# Environment: DURATION (8), ROUNDS (3), CONNS (64), RUNS (20), LATCHD (build/latchd).
# Every process started here is stopped here, by its pid, on exit or interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
RUNS=${RUNS:-20}
LATCHD=${LATCHD:-$PWD/build/latchd}
REDIS=${REDIS:-$(command -v redis-server || echo /usr/bin/redis-server)}
for tool in "$LATCHD" "$REDIS" wrk "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x $tool ]] || { echo "bench/cluster.sh: $tool not found (make deps && make)" >&2; exit 1; }
done

RPORT=$(free_port); OPORT=$(free_port); EPORT=$(free_port); APORT=$(free_port); BPORT=$(free_port)
"$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
start_origin "$OPORT" "$TMP/origin"
head -c32 /dev/urandom | base64 >"$TMP/store.key"
wait_port "$RPORT"

# node: NAME PORT STORE
node() {
  mkdir -p "$TMP/$1"
  local store="store: embedded"
  [[ $3 == redis ]] && store="store: redis://127.0.0.1:$RPORT/0
store_key_file: $TMP/store.key"
  cat >"$TMP/$1/latch.yaml" <<EOF
listen: [{address: 127.0.0.1:$2}]
workers: 1
state_dir: $TMP/$1/state
$store
auth_domain: auth.localhost:$APORT
log: {requests: $TMP/$1/requests.log, auth: $TMP/$1/auth.log}
identity_providers:
  - {name: email-code, type: onetimepin, mail: console, from: access@example.com}
apps:
  - name: bench
    domains: [bench.localhost]
    origin: http://127.0.0.1:$OPORT
    policies: [{name: staff, decision: allow, include: [{email_domain: example.com}]}]
EOF
  "$LATCHD" --config "$TMP/$1/latch.yaml" >"$TMP/$1/stdout" 2>"$TMP/$1/stderr" &
  PIDS+=($!)
  wait_port "$2" || { cat "$TMP/$1/stderr" >&2; exit 1; }
}
node embedded "$EPORT" embedded
node a "$APORT" redis
node b "$BPORT" redis

# ---- 1. throughput: redis store vs embedded store ----------------------------------------------
echo "== proxy throughput with a valid token: store redis vs embedded (wrk -t1 -c$CONNS ${DURATION}s x $ROUNDS) =="
TOK_E=$("$LATCHD" token issue --config "$TMP/embedded/latch.yaml" --app bench --email bench@example.com 2>/dev/null)
TOK_R=$("$LATCHD" token issue --config "$TMP/a/latch.yaml" --app bench --email bench@example.com 2>/dev/null)
for p in "$EPORT:$TOK_E" "$APORT:$TOK_R"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: bench.localhost:${p%%:*}" -H "cf-access-token: ${p#*:}" "http://127.0.0.1:${p%%:*}/")
  [[ $code == 200 ]] || { echo "bench/cluster.sh: warm-up on port ${p%%:*} got $code" >&2; exit 1; }
done
declare -a RE RR
for r in $(seq "$ROUNDS"); do
  for which in embedded redis; do
    if [[ $which == embedded ]]; then port=$EPORT tok=$TOK_E; else port=$APORT tok=$TOK_R; fi
    read -r rps p99 errs < <(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: bench.localhost:$port" \
      -H "cf-access-token: $tok" "http://127.0.0.1:$port/" | wrk_summary)
    [[ $errs == 0 ]] || { echo "bench/cluster.sh: $which: $errs failed requests" >&2; exit 1; }
    printf '  round %d %-8s %10.0f req/s  p99 %6.2f ms\n' "$r" "$which" "$rps" "$p99"
    if [[ $which == embedded ]]; then RE+=("$rps"); else RR+=("$rps"); fi
  done
done
ME=$(median "${RE[@]}"); MR=$(median "${RR[@]}")
echo "  median: embedded $ME req/s, redis $MR req/s: redis/embedded = $(ratio "$MR" "$ME")x"

# ---- 2. the handoff, same node and across nodes ------------------------------------------------
echo "== handoff: confirming POST on node A -> the long poll answers ($RUNS each, alternating) =="
"$PY" - "$TMP" "$APORT" "$BPORT" "$RUNS" <<'PYEOF'
import base64, http.client, os, re, statistics, sys, threading, time
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "blackbox"))
from browser import Client, form_fields

tmp, aport, bport, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
auth = f"http://auth.localhost:{aport}"
app = f"bench.localhost:{aport}"

def console_code(email, after):
    pat = re.compile(r"one-time PIN for " + re.escape(email) + r" \(app [^)]*\): (\d{8})")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = pat.findall(open(os.path.join(tmp, "a", "stderr")).read())
        if len(found) > after:
            return found[after]
        time.sleep(0.05)
    sys.exit("no PIN in node A's log")

cl = Client()
r, _ = cl.follow(f"http://{app}/")
csrf = form_fields(r.text)["csrf"]
cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": "bench@example.com"})
code = console_code("bench@example.com", 0)
r = cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
assert r.status == 302 and "grant=" in r.location, r.status
cl.follow(r.location)

def handoff(poll_port):
    key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    page = cl.get(f"{auth}/cdn-cgi/access/cli?host={app}&key={key}")
    assert page.status == 200, page.status
    f = form_fields(page.text)
    got = {}
    def poll():
        c = http.client.HTTPConnection("127.0.0.1", poll_port, timeout=40)
        c.request("GET", f"/cdn-cgi/access/transfer/{key}", headers={"Host": f"auth.localhost:{aport}"})
        resp = c.getresponse()
        resp.read()
        got["t"], got["status"] = time.monotonic(), resp.status
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.15)  # the poll is parked by now
    t0 = time.monotonic()
    p = cl.post(f"{auth}/cdn-cgi/access/cli", {"host": f["host"], "key": f["key"], "csrf": f["csrf"]})
    assert p.status == 200, p.status
    t.join()
    assert got["status"] == 200, got
    return (got["t"] - t0) * 1000

same, cross = [], []
for i in range(runs):
    same.append(handoff(aport))
    cross.append(handoff(bport))
ms, mc = statistics.median(same), statistics.median(cross)
print(f"  poll on node A (same node):   median {ms:6.2f} ms  (min {min(same):.2f}, max {max(same):.2f})")
print(f"  poll on node B (across nodes): median {mc:6.2f} ms  (min {min(cross):.2f}, max {max(cross):.2f})")
print(f"  across nodes adds {mc - ms:+.2f} ms (median)")
PYEOF
