"""Tunnels to tcp:// apps: latchd ends the client's WebSocket itself (RFC 6455) and carries the
payload of binary frames to a TCP service (a real redis-server, a TCP echo). The upgrade is
admitted as any request (401 without a token, 403 outside the policy); anything but a valid
upgrade gets a 4xx and the origin sees no connection; hostile frames get their close code; a
revocation, a removed service token or a reload that no longer admits the person closes an open
tunnel (on one node and across two nodes sharing Redis); open and close are logged and counted.

The WebSocket client here is written over a raw socket, so that it can send what a library would
refuse to (unmasked frames, reserved opcodes, oversized lengths)."""

import base64
import hashlib
import os
import re
import socket
import struct
import threading
import time

import pytest

import authkit as ak
from harness import free_port, get, wait_port
from rediskit import REDIS_SERVER, redis, redis_factory  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_S = 5.0   # "closes within a second": polled this long on a shared machine, the time printed


# --------------------------------------------------------------------------------------------
# a TCP origin that counts its connections

class TcpEcho:
    """A TCP echo on 127.0.0.1:port; .accepts counts connections, .open those still open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.open = 0
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            self.open += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            self.open -= 1
            c.close()

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def echo():
    e = TcpEcho()
    yield e
    e.close()


# --------------------------------------------------------------------------------------------
# a WebSocket client over a raw socket

class Ws:
    """One upgrade to `host` on 127.0.0.1:port (or `addr`). .status, .head (the response head);
    after a 101: send/recv binary payload, raw frames, and the close code."""

    def __init__(self, port, host, headers=(), addr="127.0.0.1", key=None, version="13",
                 method="GET", upgrade="websocket", connection="Upgrade", extra=b""):
        self.s = socket.create_connection((addr, port), timeout=10)
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = [f"{method} / HTTP/1.1", f"Host: {host}"]
        if upgrade is not None:
            lines.append(f"Upgrade: {upgrade}")
        if connection is not None:
            lines.append(f"Connection: {connection}")
        if self.key:
            lines.append(f"Sec-WebSocket-Key: {self.key}")
        if version is not None:
            lines.append(f"Sec-WebSocket-Version: {version}")
        lines += [f"{k}: {v}" for k, v in headers]
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + extra)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.s.recv(65536)
            if not b:
                break
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        m = re.match(r"HTTP/1\.1 (\d{3})", self.head)
        assert m, f"no status line: {self.head!r}"
        self.status = int(m.group(1))
        self.headers = {}
        for line in self.head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == want, self.head
            assert self.headers.get("upgrade", "").lower() == "websocket", self.head
        self.body = b""
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                b = self.s.recv(65536)
                if not b:
                    break
                self.buf += b
            self.body, self.buf = self.buf[:n], self.buf[n:]

    def json(self):
        import json
        return json.loads(self.body)

    # frames ------------------------------------------------------------------------------
    def frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        """Sends one frame; `length` overrides the length written in the head."""
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | rsv << 4 | opcode
        mb = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mb | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mb | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mb | 127, n)
        if mask:
            k = os.urandom(4)
            head += k
            payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
        self.s.sendall(head + payload)

    def send(self, data):
        self.frame(0x2, data)

    def _fill(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise EOFError("connection closed")
            self.buf += b

    def recv_frame(self):
        """(fin, opcode, payload) of the next frame; server frames are never masked."""
        self._fill(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "a server frame is masked"
        assert not b0 & 0x70, "reserved bits set"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._fill(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._fill(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self, n):
        """n bytes of binary payload (several frames perhaps)."""
        out = b""
        while len(out) < n:
            fin, op, p = self.recv_frame()
            assert op in (0x2, 0x0), (op, p)
            out += p
        return out

    def close_code(self, timeout=CLOSE_S):
        """Reads until a close frame (its code, or 0 when empty) or EOF (None)."""
        self.s.settimeout(timeout)
        try:
            while True:
                fin, op, p = self.recv_frame()
                if op == 0x8:
                    return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 0
        except (EOFError, ConnectionResetError):
            return None

    def eof(self, timeout=CLOSE_S):
        """True once the server closed the connection (after any frames)."""
        self.s.settimeout(timeout)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def resp(ws, *args):
    """One Redis command through the tunnel; the raw reply line(s)."""
    cmd = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a)}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    ws.send(cmd)
    out = b""
    while not out.endswith(b"\r\n") or (out.startswith(b"$") and out.count(b"\r\n") < 2 and not out.startswith(b"$-1")):
        fin, op, p = ws.recv_frame()
        assert op == 0x2, (op, p)
        out += p
    return out


# --------------------------------------------------------------------------------------------
# configurations

def tcp_app(name, host, origin, include=None, decision="allow", **extra):
    a = {"name": name, "domains": [host], "origin": origin,
         "policies": [{"name": f"{name}-policy", "decision": decision,
                       "include": include or [{"email_domain": "example.com"}]}]}
    a.update(extra)
    return a


def gw(latchd, apps, **extra):
    """latchd with these apps and a metrics listener (d.admin)."""
    admin = free_port()
    cfg = {"admin": {"listen": f"127.0.0.1:{admin}"}, "apps": apps}
    cfg.update(extra)
    d = latchd(cfg, extra_ports=[admin])
    d.admin = admin
    return d


def metrics_text(d):
    r = get(d.admin, "/metrics", host=f"127.0.0.1:{d.admin}")
    assert r.status == 200, r
    return r.body.decode()


def metric(d, name):
    m = re.search(r"^" + re.escape(name) + r" (\d+)$", metrics_text(d), re.M)
    return int(m.group(1)) if m else None


def wait_metric(d, name, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while metric(d, name) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return metric(d, name)


def closed_within(ws, timeout=CLOSE_S):
    """Polls for the close frame or EOF; returns (code, seconds)."""
    t0 = time.monotonic()
    code = ws.close_code(timeout)
    return code, time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# the tunnel works

def test_redis_through_the_tunnel(latchd, redis):
    d = latchd({"apps": [tcp_app("db", "db.localhost", f"tcp://127.0.0.1:{redis.port}")]})
    tok = ak.issue(d, "db", "alice@example.com")
    ws = Ws(d.port, f"db.localhost:{d.port}", [("cf-access-token", tok)])
    assert ws.status == 101, ws.head
    assert resp(ws, "PING") == b"+PONG\r\n"
    assert resp(ws, "SET", "tunnel-key", "v" * 3000) == b"+OK\r\n"
    assert resp(ws, "GET", "tunnel-key") == b"$3000\r\n" + b"v" * 3000 + b"\r\n"
    assert redis.cmd("GET", "tunnel-key") == b"v" * 3000
    ws.frame(0x8, struct.pack("!H", 1000))
    assert ws.close_code() == 1000
    assert ws.eof()
    e = d.wait_log(lambda e: e.get("tunnel") == "close")
    assert e["app"] == "db" and e["email"] == "alice@example.com" and e["status"] == 101, e
    assert e["close_reason"] == "client closed", e
    assert e["bytes_to_origin"] > 3000 and e["bytes_from_origin"] > 3000, e


def test_echo_bulk_fragments_ping_and_logs(latchd, echo):
    d = gw(latchd, [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")])
    tok = ak.issue(d, "tcp", "bob@example.com")
    ws = Ws(d.port, f"tcp.localhost:{d.port}", [("cf-access-token", tok)])
    assert ws.status == 101, ws.head
    opened = d.wait_log(lambda e: e.get("tunnel") == "open")
    assert opened["email"] == "bob@example.com" and opened["app"] == "tcp" and opened["client_ip"], opened
    ws.send(b"hello")
    assert ws.recv(5) == b"hello"
    blob = os.urandom(1_000_000)
    for i in range(0, len(blob), 100_000):      # 100 kB frames, echoed as the origin reads them
        ws.send(blob[i:i + 100_000])
    assert ws.recv(len(blob)) == blob
    # a fragmented message: binary then continuations, a ping in the middle
    ws.frame(0x2, b"ab", fin=False)
    ws.frame(0x9, b"are you there")
    ws.frame(0x0, b"cd", fin=False)
    ws.frame(0x0, b"ef", fin=True)
    got, pong = b"", None
    while len(got) < 6 or pong is None:
        fin, op, p = ws.recv_frame()
        if op == 0xA:
            pong = p
        else:
            assert op == 0x2, op
            got += p
    assert got == b"abcdef" and pong == b"are you there"
    ws.frame(0xA, b"unsolicited pong: ignored")
    ws.send(b"still")
    assert ws.recv(5) == b"still"
    ws.frame(0x8, struct.pack("!H", 4000) + "fin ✓".encode())
    assert ws.close_code() == 4000
    e = d.wait_log(lambda e: e.get("tunnel") == "close")
    assert e["bytes_to_origin"] == e["bytes_from_origin"] == 5 + len(blob) + 6 + 5, e
    assert e["request_id"] == opened["request_id"] and e["duration_us"] > 0, e
    assert wait_metric(d, "latch_tunnels_open", 0) == 0
    text = metrics_text(d)
    assert f'latch_tunnel_bytes_total{{direction="to_origin"}} {e["bytes_to_origin"]}' in text, text
    assert f'latch_tunnel_bytes_total{{direction="from_origin"}} {e["bytes_from_origin"]}' in text, text


def test_gauge_counts_open_tunnels(latchd, echo):
    d = gw(latchd, [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")])
    tok = ak.issue(d, "tcp", "bob@example.com")
    tunnels = [Ws(d.port, f"tcp.localhost:{d.port}", [("cf-access-token", tok)]) for _ in range(3)]
    assert all(t.status == 101 for t in tunnels)
    assert wait_metric(d, "latch_tunnels_open", 3) == 3
    for t in tunnels:
        t.close()
    assert wait_metric(d, "latch_tunnels_open", 0) == 0
    closes = [e for e in d.log_lines() if e.get("tunnel") == "close"]
    assert len(closes) == 3 and all(e["close_reason"] == "client disconnected" for e in closes), closes
