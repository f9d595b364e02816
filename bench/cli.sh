#!/usr/bin/env bash
# The command line's two costs (issue 5, SPEC.md §7), on loopback against a real latchd:
#
#  1. `latch curl URL` with a fresh stored token against `curl -H "cf-access-token: …" URL`
#     (hyperfine, shell-less, warm-up first): what latch adds before curl runs. Target: ≤ 5 ms.
#  2. The handoff: from the confirming POST in the browser to the CLI holding the token. RUNS
#     times, `latch login URL` runs with $BROWSER set to a script that starts headless Chromium
#     (tests/blackbox/cli_browser.mjs), which signs in with the console one-time PIN and records
#     the time just before it clicks Authorize; the CLI holds the token when its store file is
#     written (its mtime: after the gateway confirmed the new token, one more request). Target: < 100 ms.
#
# Environment: RUNS (5), BENCH_RUNS (hyperfine runs, 300), LATCHD, LATCH (build/…), PYTHON.
# Every process started here is stopped here, by its pid, on exit or interruption.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
BENCH_RUNS=${BENCH_RUNS:-300}
LATCHD=${LATCHD:-$PWD/build/latchd}
LATCH=${LATCH:-$PWD/build/latch}
PY=${PYTHON:-/usr/bin/python3}
NODE=${NODE:-node}
ROOT=$PWD

for tool in "$LATCHD" "$LATCH" hyperfine curl "$PY" "$NODE"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x $tool ]]; then
    echo "bench/cli.sh: $tool not found (make deps && make; apt-get install hyperfine)" >&2
    exit 1
  fi
done
HAVE_BROWSER=1
if [[ ! -d tests/node_modules/playwright-core || ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  HAVE_BROWSER=0
fi

source bench/lib.sh  # TMP, PIDS and the cleanup of every process started here

PORT=$(free_port)
HOST="api.localhost:$PORT"
URL="http://$HOST/bench"
cat >"$TMP/latch.yaml" <<EOF
listen: [{address: "127.0.0.1:$PORT"}]
workers: 1
state_dir: $TMP/state
auth_domain: "auth.localhost:$PORT"
log: {requests: $TMP/requests.log, auth: $TMP/auth.log}
identity_providers:
  - {name: email-code, type: onetimepin, mail: console, from: access@example.com}
apps:
  - name: api
    domains: ["$HOST"]
    origin: echo
    policies: [{name: staff, decision: allow, include: [{email_domain: example.com}]}]
EOF
"$LATCHD" --config "$TMP/latch.yaml" >"$TMP/latchd.out" 2>"$TMP/latchd.err" &
PIDS+=($!)
wait_port "$PORT" || { echo "bench: latchd did not start" >&2; cat "$TMP/latchd.err" >&2; exit 1; }

# ---- 1. latch curl vs curl -H, with a stored token -------------------------------------------
TOKEN=$("$LATCHD" token issue --config "$TMP/latch.yaml" --app api --email carol@example.com)
XDG="$TMP/xdg"
mkdir -p -m 0700 "$XDG/latch"
"$PY" - "$XDG/latch/$HOST.json" "$HOST" "$PORT" "$TOKEN" <<'EOF'
import json, os, sys, urllib.request
path, host, port, token = sys.argv[1:]
# the record latch writes after a login (src/cli/records.c): the app's token under its AUD, and
# the host's patterns the gateway gives for a valid token
req = urllib.request.Request(f"http://127.0.0.1:{port}/cdn-cgi/access/app?path=/bench",
                             headers={"Host": host, "cf-access-token": token})
app = json.load(urllib.request.urlopen(req, timeout=10))
assert app.get("token") == "ok", app
rec = {"version": 2, "host": host, "origin": f"http://{host}", "auth_domain": app["auth_domain"],
       "auth_url": app["auth_url"], "auth_origin": app["auth_url"], "routes": app["routes"],
       "apps": {app["aud"]: {"app": app["app"], "app_token": token}}}
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(rec).encode())
os.close(fd)
EOF
# both must get the origin's answer (200) before they are timed
code=$(curl -s -o /dev/null -w '%{http_code}' -H "cf-access-token: $TOKEN" "$URL")
[[ $code == 200 ]] || { echo "bench/cli.sh: curl -H got $code" >&2; exit 1; }
code=$(XDG_CONFIG_HOME=$XDG BROWSER=/bin/false "$LATCH" curl -s -o /dev/null -w '%{http_code}' "$URL")
[[ $code == 200 ]] || { echo "bench/cli.sh: latch curl got $code" >&2; exit 1; }

echo "== latch curl vs curl -H (stored token, $BENCH_RUNS runs each) =="
XDG_CONFIG_HOME=$XDG BROWSER=/bin/false hyperfine -N --warmup 20 --runs "$BENCH_RUNS" \
  --export-json "$TMP/hf.json" --style basic \
  -n "curl -H" "curl -s -o /dev/null -H 'cf-access-token: $TOKEN' $URL" \
  -n "latch curl" "$LATCH curl -s -o /dev/null $URL" >"$TMP/hf.txt" 2>&1 ||
  { cat "$TMP/hf.txt"; exit 1; }
grep -E "Time|Range|±" "$TMP/hf.txt" | sed 's/^/  /' || true
ADDED=$("$PY" - "$TMP/hf.json" <<'EOF'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c, l = r["curl -H"], r["latch curl"]
mc, ml = statistics.median(c["times"]) * 1e3, statistics.median(l["times"]) * 1e3
print(f"{ml - mc:.2f} {mc:.2f} {ml:.2f} {(l['mean'] - c['mean']) * 1e3:.2f}")
EOF
)
read -r ADDED_MED CURL_MED LATCH_MED ADDED_MEAN <<<"$ADDED"
echo "  median: curl -H $CURL_MED ms, latch curl $LATCH_MED ms: latch adds $ADDED_MED ms (mean: $ADDED_MEAN ms); target ≤ 5 ms"
"$PY" -c "import sys; sys.exit(0 if float('$ADDED_MED') <= 5 else 1)" && RESULT1=met || RESULT1=MISSED

# ---- 2. the handoff: confirming POST -> the CLI holds the token ------------------------------
RESULT2=skipped
if [[ $HAVE_BROWSER == 1 ]]; then
  echo "== handoff: confirming POST -> token stored by the CLI ($RUNS logins) =="
  cat >"$TMP/browser.sh" <<EOF
#!/bin/sh
exec "$NODE" "$ROOT/tests/blackbox/cli_browser.mjs" "\$1" >>"$TMP/browser.out" 2>&1
EOF
  chmod +x "$TMP/browser.sh"
  if "$PY" - "$TMP" "$LATCH" "$URL" "$HOST" "$RUNS" <<'EOF'
import json, os, statistics, subprocess, sys, time
tmp, latch, url, host, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
stored, exited = [], []
for i in range(runs):
    xdg = os.path.join(tmp, f"login{i}")
    rec_path = os.path.join(tmp, f"record{i}.jsonl")
    env = dict(os.environ, XDG_CONFIG_HOME=xdg, BROWSER=os.path.join(tmp, "browser.sh"),
               LATCH_TEST_LATCHD_STDERR=os.path.join(tmp, "latchd.err"),
               LATCH_TEST_RECORD=rec_path, LATCH_TEST_EMAIL="carol@example.com")
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "LATCH_NO_BROWSER"):
        env.pop(k, None)
    p = subprocess.Popen([latch, "--timeout", "90", "login", url], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=120)
    t_exit = time.time()
    if p.returncode != 0:
        sys.exit(f"latch login exited {p.returncode}: {err}")
    deadline = time.time() + 30
    while not (os.path.exists(rec_path) and open(rec_path).read().strip()) and time.time() < deadline:
        time.sleep(0.05)
    rec = json.loads(open(rec_path).read().splitlines()[-1])
    if not rec.get("ok"):
        sys.exit(f"browser: {rec}")
    t_store = os.stat(os.path.join(xdg, "latch", f"{host}.json")).st_mtime_ns / 1e9
    stored.append((t_store - rec["t_click"]) * 1e3)
    exited.append((t_exit - rec["t_click"]) * 1e3)
    print(f"  run {i + 1}: token stored {stored[-1]:.1f} ms after the click, latch exited at {exited[-1]:.1f} ms")
med = statistics.median(stored)
print(f"  median: token stored {med:.1f} ms after the confirming click (latch exited at "
      f"{statistics.median(exited):.1f} ms); target < 100 ms")
sys.exit(0 if med < 100 else 3)
EOF
  then RESULT2=met; else rc=$?; [[ $rc == 3 ]] && RESULT2=MISSED || RESULT2=failed; fi
else
  echo "== handoff: skipped (needs chromium and tests/node_modules/playwright-core) =="
fi

echo "== summary =="
echo "  latch curl adds $ADDED_MED ms over curl -H (median): $RESULT1 (target ≤ 5 ms)"
echo "  confirming POST -> token held by the CLI: $RESULT2 (target < 100 ms)"
