#!/usr/bin/env bash
# TCP tunnels (issue 13's benchmark), side by side on loopback with a real sshd:
#   bulk    scp of SIZE_MB MiB (to a file beside it) to the sshd straight, and through `latch ssh` (ProxyCommand) to
#           a tcp:// app in front of the same sshd; ROUNDS rounds, the order turned each round,
#           the median of the per-round throughput ratios (through latch / straight)
#   setup   `ssh host true` SETUPS times each way, alternating; the medians and their difference
#           (the milliseconds latch adds: the ProxyCommand's start, the upgrade, the token), and
#           the part that is latch's alone: from starting `latch ssh` to sshd's banner through
#           it, against a direct connect
#   idle    IDLE open idle tunnels: latchd's memory per tunnel (bench/tunnel_idle.py)
# The CLI uses a service token (LATCH_CLIENT_ID/SECRET): no browser, the token checked on every
# connection. One latchd worker. Environment: SIZE_MB (1024), ROUNDS (3), SETUPS (20),
# IDLE (1000), LATCHD (build/latchd), LATCH (build/latch).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
SETUPS=${SETUPS:-20}
IDLE=${IDLE:-1000}
LATCHD=${LATCHD:-$PWD/build/latchd}
LATCH=${LATCH:-$PWD/build/latch}
SSHD=${SSHD:-/usr/sbin/sshd}

SPORT=$(free_port); LPORT=$(free_port)
S="$TMP/ssh"; mkdir -p "$S" "$TMP/latchd/state" "$TMP/home"
chmod 700 "$S"

# the sshd: its own host key, the client's key authorized, nothing else of the machine's
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/id"
cp "$S/id.pub" "$S/authorized_keys"
cat >"$S/sshd_config" <<EOF
Port $SPORT
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
"$SSHD" -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
PIDS+=($!)
echo "[127.0.0.1]:$SPORT $(cut -d' ' -f1-2 "$S/host_key.pub")" >"$S/known_hosts"
echo "ssh.localhost $(cut -d' ' -f1-2 "$S/host_key.pub")" >>"$S/known_hosts"


# latchd: a tcp app in front of the sshd, a service token admitted
cat >"$TMP/latchd/latch.yaml" <<EOF
listen: [{address: 127.0.0.1:$LPORT}]
workers: 1
max_connections_per_client: 0
state_dir: $TMP/latchd/state
auth_domain: auth.localhost:$LPORT
log: {requests: $TMP/latchd/requests.log, auth: $TMP/latchd/auth.log}
apps:
  - name: ssh
    domains: [ssh.localhost]
    origin: tcp://127.0.0.1:$SPORT
    policies: [{name: bench, decision: service_auth, include: [{any_valid_service_token: {}}]}]
EOF
OUT=$("$LATCHD" service-token create bench --config "$TMP/latchd/latch.yaml")
export LATCH_CLIENT_ID=$(sed -n 's/^CF-Access-Client-Id: //p' <<<"$OUT")
export LATCH_CLIENT_SECRET=$(sed -n 's/^CF-Access-Client-Secret: //p' <<<"$OUT")
{ echo "service_tokens:"; sed -n '/^  - name:/,$p' <<<"$OUT"; } >>"$TMP/latchd/latch.yaml"
"$LATCHD" --config "$TMP/latchd/latch.yaml" >"$TMP/latchd/stdout" 2>"$TMP/latchd/stderr" &
PIDS+=($!)
LATCHD_PID=$!
wait_port "$LPORT"
wait_port "$SPORT"
export HOME="$TMP/home" XDG_CONFIG_HOME="$TMP/home/.config"

SSH_OPTS=(-F none -i "$S/id" -o BatchMode=yes -o UserKnownHostsFile="$S/known_hosts"
          -o StrictHostKeyChecking=yes -o LogLevel=ERROR)
PROXY=(-o "ProxyCommand=$LATCH ssh --hostname http://ssh.localhost:$LPORT"
       -o HostKeyAlias=ssh.localhost)
USER_AT=$(id -un)@127.0.0.1

ssh_straight() { ssh "${SSH_OPTS[@]}" -p "$SPORT" "$USER_AT" "$@"; }
ssh_latch() { ssh "${SSH_OPTS[@]}" "${PROXY[@]}" -p "$SPORT" "$USER_AT" "$@"; }
ssh_straight true
ssh_latch true

now_ns() { date +%s%N; }
calc() { awk "BEGIN { printf \"%.4f\", $* }"; }

# --- bulk ------------------------------------------------------------------------------------
head -c "$((SIZE_MB << 20))" /dev/urandom >"$TMP/blob"
scp_time() { # way: prints seconds for one scp of the blob (the copy removed)
  local t0 t1
  t0=$(now_ns)
  if [[ $1 == straight ]]; then
    scp -q "${SSH_OPTS[@]}" -P "$SPORT" "$TMP/blob" "$USER_AT:$TMP/copy"
  else
    scp -q "${SSH_OPTS[@]}" "${PROXY[@]}" -P "$SPORT" "$TMP/blob" "$USER_AT:$TMP/copy"
  fi
  t1=$(now_ns)
  rm -f "$TMP/copy"
  calc "($t1 - $t0) / 1e9"
}
ratios=()
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2)); then tl=$(scp_time latch); ts=$(scp_time straight)
  else ts=$(scp_time straight); tl=$(scp_time latch); fi
  ratios+=("$(calc "$ts / $tl")")
  printf 'round %d: scp %d MiB straight %.2f s (%.0f MiB/s), through latch %.2f s (%.0f MiB/s)\n' \
    "$r" "$SIZE_MB" "$ts" "$(calc "$SIZE_MB / $ts")" "$tl" "$(calc "$SIZE_MB / $tl")"
done
echo "bulk: scp through latch / straight = $(median "${ratios[@]}")x (median of $ROUNDS rounds; target >= 0.9x)"

# --- setup -----------------------------------------------------------------------------------
st=(); lt=()
for ((i = 0; i < SETUPS; i++)); do
  t0=$(now_ns); ssh_straight true; t1=$(now_ns); st+=("$(((t1 - t0) / 1000))")
  t0=$(now_ns); ssh_latch true; t1=$(now_ns); lt+=("$(((t1 - t0) / 1000))")
done
ms=$(median "${st[@]}"); ml=$(median "${lt[@]}")
printf 'setup: ssh host true straight %.1f ms, through latch %.1f ms: %+.1f ms (medians of %d; target < 10 ms)\n' \
  "$(calc "$ms / 1000")" "$(calc "$ml / 1000")" "$(calc "($ml - $ms) / 1000")" "$SETUPS"

# the part of it that is latch's: from starting `latch ssh` to sshd's banner through the tunnel
# (process start, the stored service token, TCP + upgrade + origin connect), against a direct
# connect to the banner
"$PY" - "$SPORT" "$LATCH" "http://ssh.localhost:$LPORT" "$SETUPS" <<'PYEOF'
import socket, statistics, subprocess, sys, time
port, latch, host, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
def direct():
    t = time.perf_counter(); s = socket.create_connection(("127.0.0.1", port))
    assert s.recv(64).startswith(b"SSH-"); d = time.perf_counter() - t; s.close(); return d
def through():
    t = time.perf_counter()
    p = subprocess.Popen([latch, "ssh", "--hostname", host], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.read(4) == b"SSH-"; d = time.perf_counter() - t
    p.stdin.close(); p.kill(); p.wait(); return d
a, b = [], []
for _ in range(n):
    a.append(direct()); b.append(through())
ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
print(f"banner: sshd's banner straight {ma:.2f} ms, through latch ssh {mb:.2f} ms: +{mb - ma:.2f} ms "
      f"(medians of {n}: what latch adds to a connection's setup)")
PYEOF

# --- idle ------------------------------------------------------------------------------------
N=$IDLE LATCHD=$LATCHD "$PY" bench/tunnel_idle.py
