#!/usr/bin/env python3
"""latchd's memory per idle tunnel to a tcp:// app (issue 13's target: under 4 KiB).

Starts latchd (one worker) in front of a TCP origin that accepts and holds connections, opens
N WebSocket tunnels with a valid app token (each sends one binary frame through, so every
buffer was used once), lets them go idle, and reports the growth of latchd's resident memory
(VmRSS) over the same daemon with WARM tunnels opened and closed before (its buffer pool and
allocator arenas warmed), divided by N. Environment: N (1000), LATCHD (build/latchd)."""

import base64
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

N = int(os.environ.get("N", "1000"))
WARM = 50
LATCHD = os.environ.get("LATCHD", os.path.join(os.path.dirname(__file__), "..", "build", "latchd"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def hold_origin():
    """Accepts connections and reads (and drops) what they send; returns the port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)

    def run():
        while True:
            for key, _ in sel.select():
                if key.fileobj is ls:
                    c, _ = ls.accept()
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                else:
                    try:
                        if not key.fileobj.recv(65536):
                            sel.unregister(key.fileobj)
                            key.fileobj.close()
                    except OSError:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
    threading.Thread(target=run, daemon=True).start()
    return ls.getsockname()[1]


def tunnel(port, token):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: tcp.localhost:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"cf-access-token: {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            raise SystemExit("tunnel refused: connection closed")
        head += b
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"tunnel refused: {head[:200]!r}")
    mask = os.urandom(4)
    payload = bytes(c ^ mask[i % 4] for i, c in enumerate(b"hello"))
    s.sendall(b"\x82\x85" + mask + payload)
    return s


def main():
    oport, lport = hold_origin(), free_port()
    tmp = tempfile.mkdtemp(prefix="latch-bench-tunnel-")
    cfg = os.path.join(tmp, "latch.yaml")
    with open(cfg, "w") as f:
        f.write(f"""listen: [{{address: 127.0.0.1:{lport}}}]
workers: 1
state_dir: {tmp}/state
auth_domain: auth.localhost:{lport}
max_connections_per_client: 0
log: {{requests: {tmp}/requests.log, auth: {tmp}/auth.log}}
apps:
  - name: tcp
    domains: [tcp.localhost]
    origin: tcp://127.0.0.1:{oport}
    policies: [{{name: staff, decision: allow, include: [{{email_domain: example.com}}]}}]
""")
    d = subprocess.Popen([LATCHD, "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", lport)).close()
                break
            except OSError:
                time.sleep(0.05)
        token = subprocess.run([LATCHD, "token", "issue", "--app", "tcp", "--email", "bench@example.com",
                                "--config", cfg], capture_output=True, text=True, check=True).stdout.strip()
        warm = [tunnel(lport, token) for _ in range(WARM)]
        time.sleep(0.5)
        for s in warm:
            s.close()
        time.sleep(1.0)
        before = rss_kib(d.pid)
        held = [tunnel(lport, token) for _ in range(N)]
        time.sleep(1.5)
        after = rss_kib(d.pid)
        per = (after - before) * 1024 / N
        print(f"idle tunnels: {N}; latchd VmRSS {before} KiB -> {after} KiB; "
              f"{per:.0f} bytes ({per / 1024:.2f} KiB) per idle tunnel")
        for s in held:
            s.close()
    finally:
        d.terminate()
        d.wait(20)


if __name__ == "__main__":
    sys.exit(main())
