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
                 method="GET", upgrade="websocket", connection="Upgrade", extra=b"", tls=False):
        self.s = socket.create_connection((addr, port), timeout=10)
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.s = ctx.wrap_socket(self.s, server_hostname=host.split(":")[0])
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
        """Reads until a close frame (its code, or 0 when empty), EOF (None) or the timeout (-1)."""
        self.s.settimeout(timeout)
        try:
            while True:
                fin, op, p = self.recv_frame()
                if op == 0x8:
                    return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 0
        except (EOFError, ConnectionResetError):
            return None
        except socket.timeout:
            return -1

    def eof(self, timeout=CLOSE_S):
        """True once the server closed the connection (after any frames)."""
        self.s.settimeout(timeout)
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
        except (ConnectionResetError, OSError) as e:
            if isinstance(e, socket.timeout):
                return False
            return True

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


def closed_within(ws, timeout=CLOSE_S, t0=None):
    """Waits for the close frame or EOF; returns (code, seconds since t0, by default now)."""
    t0 = time.monotonic() if t0 is None else t0
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


def test_origin_refused_is_502_before_any_101(latchd):
    dead = free_port()              # nothing listens there
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{dead}")]})
    tok = ak.issue(d, "tcp", "bob@example.com")
    ws = Ws(d.port, f"tcp.localhost:{d.port}", [("cf-access-token", tok), ("Accept", "application/json")])
    assert ws.status == 502, ws.head
    assert ws.json()["error"] == "bad_gateway"
    assert ws.eof()
    assert not any(e.get("tunnel") for e in d.log_lines())


# --------------------------------------------------------------------------------------------
# admission: as any request; anything but a valid upgrade never reaches the origin

def test_refused_without_token_outside_policy_and_without_upgrade(latchd, echo):
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}",
                                 include=[{"email_domain": "example.com"}])]})
    host = f"tcp.localhost:{d.port}"
    # no token: the 401 the command line logs in from
    ws = Ws(d.port, host)
    assert ws.status == 401, ws.head
    j = ws.json()
    assert j["error"] == "login_required" and j["auth_domain"], j
    # a person the policy does not admit
    ws = Ws(d.port, host, [("cf-access-token", ak.issue(d, "tcp", "eve@evil.example"))])
    assert ws.status == 403, ws.head
    tok = ak.issue(d, "tcp", "bob@example.com")
    auth = [("cf-access-token", tok), ("Accept", "application/json")]
    # admitted, but not a WebSocket upgrade: 4xx, and the origin never hears of it
    cases = {
        "plain GET": dict(upgrade=None, connection=None, key="", version=None),
        "no Connection: upgrade": dict(connection="keep-alive"),
        "another protocol": dict(upgrade="h2c"),
        "POST": dict(method="POST"),
        "HEAD": dict(method="HEAD"),
        "version 8": dict(version="8"),
        "no version": dict(version=None),
        "no key": dict(key=""),
        "short key": dict(key=base64.b64encode(os.urandom(15)).decode()),
        "long key": dict(key=base64.b64encode(os.urandom(17)).decode()),
        "key not base64": dict(key="!" * 22 + "=="),
    }
    for what, kw in cases.items():
        ws = Ws(d.port, host, auth, **kw)
        assert 400 <= ws.status < 500, (what, ws.head)
        if kw.get("method") != "HEAD":
            assert ws.json()["error"] in ("websocket_required", "websocket_version", "websocket_key"), (what, ws.body)
        print(f"{what}: {ws.status}")
    ws = Ws(d.port, host, auth, upgrade=None, connection=None, key="", version=None)
    assert ws.status == 426 and "websocket" in ws.headers.get("upgrade", "").lower(), ws.head
    # a body on the upgrade request
    ws = Ws(d.port, host, auth + [("Content-Length", "5")], extra=b"hello")
    assert 400 <= ws.status < 500, ws.head
    assert echo.accepts == 0, "the origin got a connection for a request that was not an upgrade"
    # the app's own endpoints still answer on its host
    r = get(d.port, "/cdn-cgi/access/app", host=host)
    assert r.status == 200 and r.json()["aud"], r
    ok = Ws(d.port, host, auth)
    assert ok.status == 101
    ok.send(b"x")
    assert ok.recv(1) == b"x" and echo.accepts == 1


# --------------------------------------------------------------------------------------------
# hostile frames: each refused with its close code, the origin connection closed

HOSTILE = [
    ("unmasked binary", lambda ws: ws.frame(0x2, b"abc", mask=False), 1002),
    ("frame over the limit", lambda ws: ws.frame(0x2, b"", length=(1 << 20) + 1), 1009),
    ("2^63 length", lambda ws: ws.s.sendall(b"\x82\xff\x80" + b"\0" * 7 + b"abcd"), 1002),
    ("non-minimal length", lambda ws: ws.s.sendall(b"\x82\xfe\x00\x05abcd" + b"x" * 5), 1002),
    ("reserved opcode 3", lambda ws: ws.frame(0x3, b"x"), 1002),
    ("reserved opcode 0xB", lambda ws: ws.frame(0xB, b"x"), 1002),
    ("reserved bit", lambda ws: ws.frame(0x2, b"x", rsv=4), 1002),
    ("text frame", lambda ws: ws.frame(0x1, b"hello"), 1003),
    ("continuation first", lambda ws: ws.frame(0x0, b"x"), 1002),
    ("binary inside a message", lambda ws: (ws.frame(0x2, b"a", fin=False), ws.frame(0x2, b"b")), 1002),
    ("fragmented ping", lambda ws: ws.frame(0x9, b"p", fin=False), 1002),
    ("fragmented close", lambda ws: ws.frame(0x8, struct.pack("!H", 1000), fin=False), 1002),
    ("ping over 125", lambda ws: ws.frame(0x9, b"p" * 126), 1002),
    ("close code 1005", lambda ws: ws.frame(0x8, struct.pack("!H", 1005)), 1002),
    ("close code 999", lambda ws: ws.frame(0x8, struct.pack("!H", 999)), 1002),
    ("close code 2000", lambda ws: ws.frame(0x8, struct.pack("!H", 2000)), 1002),
    ("close of one byte", lambda ws: ws.frame(0x8, b"\x03"), 1002),
    ("close reason not UTF-8", lambda ws: ws.frame(0x8, struct.pack("!H", 1000) + b"\xc0\xaf"), 1002),
]


@pytest.mark.parametrize("what,send,code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_frames(latchd, echo, what, send, code):
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]})
    tok = ak.issue(d, "tcp", "bob@example.com")
    ws = Ws(d.port, f"tcp.localhost:{d.port}", [("cf-access-token", tok)])
    assert ws.status == 101
    ws.send(b"ok?")
    assert ws.recv(3) == b"ok?"
    send(ws)
    assert ws.close_code() == code, what
    assert ws.eof(), "the connection stays open after the close"
    deadline = time.monotonic() + 5
    while echo.open and time.monotonic() < deadline:
        time.sleep(0.02)
    assert echo.open == 0, "the origin connection stays open"
    e = d.wait_log(lambda e: e.get("tunnel") == "close")
    # nothing of the bad frame reached the origin (a message's valid first fragment did)
    assert e["bytes_to_origin"] == 3 + (what == "binary inside a message"), e
    print(what, "->", code, e["close_reason"])


# --------------------------------------------------------------------------------------------
# closing from the gateway's side

def open_tunnel(d, host, headers):
    ws = Ws(d.port, f"{host}:{d.port}", headers)
    assert ws.status == 101, ws.head
    ws.send(b"ping")
    assert ws.recv(4) == b"ping"
    return ws


def still_open(ws):
    ws.s.settimeout(5)
    ws.send(b"again")
    return ws.recv(5) == b"again"


def test_revocation_closes_the_tunnels_of_its_tokens(latchd, echo):
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}"),
                         tcp_app("tcp2", "tcp2.localhost", f"tcp://127.0.0.1:{echo.port}")]})
    alice = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "alice@example.com"))])
    alice_sub = open_tunnel(d, "tcp.localhost",
                            [("cf-access-token", ak.issue(d, "tcp", "alice+ops@example.com"))])
    bob = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "bob@example.com"))])
    carol = open_tunnel(d, "tcp2.localhost", [("cf-access-token", ak.issue(d, "tcp2", "carol@example.com"))])
    time.sleep(1.05)                # revocations are "issued at or before" to the second
    t0 = time.monotonic()
    ak.cli(d, "revoke", "--email", "alice@example.com", check=True)
    code, took = closed_within(alice, t0=t0)
    assert code == 1008, code
    print(f"revoke --email closed the tunnel in {took:.3f} s")
    assert alice_sub.close_code() == 1008, "the sub-addressed spelling of a revoked mailbox stays open"
    assert still_open(bob) and still_open(carol)
    t0 = time.monotonic()
    ak.cli(d, "revoke", "--app", "tcp2", check=True)
    code, took = closed_within(carol, t0=t0)
    assert code == 1008, code
    print(f"revoke --app closed the tunnel in {took:.3f} s")
    assert still_open(bob)
    e = d.wait_log(lambda e: e.get("tunnel") == "close" and e.get("email") == "alice@example.com")
    assert e["close_reason"] == "revoked", e
    # a token issued after the revocation opens a tunnel again
    time.sleep(1.05)
    again = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "alice@example.com"))])
    assert still_open(again)


def test_service_token_removed_or_expired_closes_its_tunnel(latchd, echo, tmp_path):
    ci = ak.make_service_token(tmp_path, "ci")
    short = ak.make_service_token(tmp_path, "short")
    # long enough to open a tunnel with it on a loaded machine, short enough to wait for
    short[2]["expires"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 12))
    app = tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}", decision="service_auth",
                  include=[{"any_valid_service_token": {}}])
    cfg = {"service_tokens": [ci[2], short[2]], "apps": [app]}
    d = latchd(cfg)
    t_ci = open_tunnel(d, "tcp.localhost", [("CF-Access-Client-Id", ci[0]), ("CF-Access-Client-Secret", ci[1])])
    t_short = open_tunnel(d, "tcp.localhost",
                          [("CF-Access-Client-Id", short[0]), ("CF-Access-Client-Secret", short[1])])
    code, took = closed_within(t_short, timeout=30)
    assert code == 1008, code
    late = time.time() - time.mktime(time.strptime(short[2]["expires"], "%Y-%m-%dT%H:%M:%SZ")) + time.mktime(time.gmtime(0))
    print(f"an expiring service token's tunnel closed {late:.3f} s after it expired")
    assert still_open(t_ci)
    e = d.wait_log(lambda e: e.get("tunnel") == "close" and e.get("service_token") == "short")
    assert e["close_reason"] == "service token expired", e
    t0 = time.monotonic()
    d.reload({"service_tokens": [], "apps": [app]})
    code, took = closed_within(t_ci, t0=t0)
    assert code == 1008, code
    print(f"deleting the service token closed its tunnel in {took:.3f} s")
    e = d.wait_log(lambda e: e.get("tunnel") == "close" and e.get("service_token") == "ci")
    assert e["close_reason"] == "service token removed", e


def test_reload_closes_only_the_tunnels_it_no_longer_admits(latchd, echo):
    def cfg(include, extra_apps=()):
        return {"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}", include=include),
                         *extra_apps]}
    d = latchd(cfg([{"email_domain": "example.com"}]))
    alice = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "alice@example.com"))])
    bob = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "bob@example.com"))])
    # a reload that still admits both: untouched
    d.reload(cfg([{"email_domain": "example.com"}], [tcp_app("other", "other.localhost", "tcp://127.0.0.1:1")]))
    deadline = time.monotonic() + 5
    while get(d.port, "/cdn-cgi/access/app", host=f"other.localhost:{d.port}").status != 200:
        assert time.monotonic() < deadline, "the reload was not applied"
        time.sleep(0.05)
    assert still_open(alice) and still_open(bob)
    # a reload whose policy no longer admits alice: hers closes, bob's stays
    t0 = time.monotonic()
    d.reload(cfg([{"email": "bob@example.com"}]))
    code, took = closed_within(alice, t0=t0)
    assert code == 1008, code
    print(f"a reload excluding the person closed the tunnel in {took:.3f} s")
    assert still_open(bob)
    e = d.wait_log(lambda e: e.get("tunnel") == "close" and e.get("email") == "alice@example.com")
    assert e["close_reason"] == "policy", e
    # a reload removing the app closes the rest
    d.reload({"apps": [tcp_app("other", "other.localhost", "tcp://127.0.0.1:1")]})
    assert bob.close_code() == 1008
    e = d.wait_log(lambda e: e.get("tunnel") == "close" and e.get("email") == "bob@example.com")
    assert e["close_reason"] == "app removed", e


# --------------------------------------------------------------------------------------------
# two nodes sharing Redis

@pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs redis-server")
def test_revocation_on_one_node_closes_a_tunnel_on_the_other(tmp_path, redis, echo):
    from test_cluster import A, B, Cluster
    cl = Cluster(tmp_path, redis)
    try:
        extra = {"apps": [tcp_app("tcp", f"tcp.localhost:{cl.port}", f"tcp://127.0.0.1:{echo.port}")]}
        a = cl.node("a", A, **extra)
        b = cl.node("b", B, **extra)
        tok = ak.issue(a, "tcp", "alice@example.com")
        ws = Ws(cl.port, f"tcp.localhost:{cl.port}", [("cf-access-token", tok)], addr=B)
        assert ws.status == 101, ws.head
        ws.send(b"hi")
        assert ws.recv(2) == b"hi"
        time.sleep(1.05)
        t0 = time.monotonic()
        ak.cli(a, "revoke", "--email", "alice@example.com", check=True)
        code, took = closed_within(ws, t0=t0)
        assert code == 1008, code
        print(f"a revocation made on A closed the tunnel on B in {took:.3f} s")
        e = b.wait_log(lambda e: e.get("tunnel") == "close")
        assert e["close_reason"] == "revoked", e
    finally:
        cl.finish(False)


def test_sigterm_closes_tunnels_going_away(latchd, echo):
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]})
    ws = open_tunnel(d, "tcp.localhost", [("cf-access-token", ak.issue(d, "tcp", "bob@example.com"))])
    t0 = time.monotonic()
    d.signal(15)
    code, took = closed_within(ws, t0=t0)
    assert code == 1001, code
    assert d.proc.wait(10) == 0, "latchd did not exit promptly with a tunnel open"
    print(f"SIGTERM closed the tunnel in {took:.3f} s")
    d.stopped_by_test = True


# --------------------------------------------------------------------------------------------
# backpressure: latchd reads from one side only what the other takes

class Firehose:
    """A TCP origin that writes as fast as its peer takes (counting) and never reads; or, with
    sink=True, reads nothing and writes nothing (its peer's bytes pile up in the kernel)."""

    def __init__(self, sink=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.conns = []
        self.sink = sink
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.sock.accept()
        self.conns.append(c)
        if self.sink:
            return
        chunk = b"z" * 65536
        try:
            while True:
                self.sent += c.send(chunk)
        except OSError:
            pass

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def test_backpressure_both_ways(latchd):
    from harness import rss_kib
    fast = Firehose()
    sink = Firehose(sink=True)
    d = latchd({"apps": [tcp_app("fast", "fast.localhost", f"tcp://127.0.0.1:{fast.port}"),
                         tcp_app("sink", "sink.localhost", f"tcp://127.0.0.1:{sink.port}")]})
    try:
        rss0 = rss_kib(d.pid)
        # a fast origin, a client that does not read: the origin is held back
        ws = Ws(d.port, f"fast.localhost:{d.port}", [("cf-access-token", ak.issue(d, "fast", "bob@example.com"))])
        assert ws.status == 101
        ws.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(2)
        held, rss1 = fast.sent, rss_kib(d.pid)
        time.sleep(1)
        assert fast.sent == held, "the origin's writes were not held back while the client read nothing"
        print(f"origin wrote {held} bytes before it was held back; latchd grew {rss1 - rss0} KiB")
        assert held < 16 << 20, held           # kernel buffers and one 32 KiB buffer, not all of it
        assert rss1 - rss0 < 4096, (rss0, rss1)
        got = ws.recv(4 << 20)                  # reading lets it go on
        assert got == b"z" * len(got)
        assert fast.sent > held
        ws.close()
        # a client that sends to an origin that does not read: the client is held back
        ws = Ws(d.port, f"sink.localhost:{d.port}", [("cf-access-token", ak.issue(d, "sink", "bob@example.com"))])
        assert ws.status == 101
        ws.s.setblocking(False)
        frame = struct.pack("!BBH", 0x82, 0x80 | 126, 60000) + b"\0\0\0\0" + b"y" * 60000  # zero mask
        sent, stalled_since = 0, None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                n = ws.s.send(frame[sent % len(frame):])
                sent += n
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.5:
                    break
                time.sleep(0.05)
        rss2 = rss_kib(d.pid)
        print(f"the client could send {sent} bytes before it was held back; latchd grew {rss2 - rss0} KiB")
        assert stalled_since, "the client was never held back"
        assert sent < 32 << 20, sent
        assert rss2 - rss0 < 4096, (rss0, rss2)
        ws.close()
    finally:
        fast.close()
        sink.close()


# --------------------------------------------------------------------------------------------
# configuration

CHECK_BASE = """listen: [{{address: 127.0.0.1:8080}}]
state_dir: {state}
auth_domain: auth.localhost:8080
timeouts: {{tunnel_idle: 2h}}
apps:
  - name: db
    domains: [db.localhost]
    origin: {origin}
    policies: [{{name: all, decision: bypass, include: [{{everyone: {{}}}}]}}]
"""


def check_config(tmp_path, origin, extra=""):
    import subprocess
    from harness import LATCHD
    p = tmp_path / "latch.yaml"
    p.write_text(CHECK_BASE.format(state=tmp_path / "state", origin=origin) + extra)
    r = subprocess.run([LATCHD, "check", "--config", str(p)], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr, str(p)


@pytest.mark.parametrize("origin", ["tcp://127.0.0.1:6379", "tcp://redis.internal:6379", "tcp://[::1]:22",
                                    "TCP://db.localhost:5432"])
def test_check_accepts_tcp_origins(tmp_path, origin):
    rc, out, _ = check_config(tmp_path, origin)
    assert rc == 0, out


@pytest.mark.parametrize("origin,why", [
    ("tcp://127.0.0.1", "needs a port"),
    ("tcp://127.0.0.1:6379/", "has no path"),
    ("tcp://127.0.0.1:6379/db", "has no path"),
    ("tcp://127.0.0.1:6379?x=1", "query"),
    ("tcp://user@127.0.0.1:6379", "user info"),
    ("tcp://:6379", "no host"),
    ("tcp://127.0.0.1:0", "port"),
    ("udp://127.0.0.1:53", "scheme"),
])
def test_check_refuses_bad_tcp_origins(tmp_path, origin, why):
    rc, out, path = check_config(tmp_path, origin)
    assert rc != 0, out
    assert re.search(re.escape(path) + r":8:13: .*" + re.escape(why), out), out


@pytest.mark.parametrize("key,line", [("origin_tls: {verify: false}", "origin_tls"),
                                      ("preserve_host: false", "preserve_host")])
def test_check_refuses_http_settings_on_a_tcp_app(tmp_path, key, line):
    rc, out, path = check_config(tmp_path, "tcp://127.0.0.1:6379", f"    {key}\n")
    assert rc != 0, out
    assert re.search(re.escape(path) + r":10:\d+: .*'" + line + "' needs an http", out), out


def test_cross_origin_pages_cannot_open_a_tunnel(latchd, echo):
    """A page of a sibling app (same site: the browser sends this host's SameSite=Lax cookie
    with its WebSocket) must not reach the TCP service in the person's name."""
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]})
    auth = [("cf-access-token", ak.issue(d, "tcp", "bob@example.com"))]
    for origin in (f"http://wiki.localhost:{d.port}", "https://evil.example", "null",
                   f"https://tcp.localhost:{d.port}", f"http://tcp.localhost:{d.port + 1}",
                   f"http://tcp.localhost:{d.port}.evil.example"):
        ws = Ws(d.port, f"tcp.localhost:{d.port}", auth + [("Origin", origin), ("Accept", "application/json")])
        assert ws.status == 403 and ws.json()["error"] == "cross_origin", (origin, ws.head)
    assert echo.accepts == 0
    ws = Ws(d.port, f"tcp.localhost:{d.port}", auth + [("Origin", f"http://TCP.localhost:{d.port}")])
    assert ws.status == 101, ws.head   # the app's own page may


def test_tunnel_over_a_tls_listener(latchd, echo, tmp_path):
    from test_tls import make_cert
    crt, key, _ = make_cert(tmp_path, "tcp.localhost")
    port = free_port()
    d = latchd({"listen": [{"address": f"127.0.0.1:{port}", "tls": {"cert": str(crt), "key": str(key)}}],
                "auth_domain": f"auth.localhost:{port}",
                "apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]}, port=port)
    tok = ak.issue(d, "tcp", "bob@example.com")
    ws = Ws(port, f"tcp.localhost:{port}", [("cf-access-token", tok), ("Origin", f"https://tcp.localhost:{port}")],
            tls=True)
    assert ws.status == 101, ws.head
    blob = os.urandom(2_000_000)
    for i in range(0, len(blob), 250_000):
        ws.send(blob[i:i + 250_000])
    assert ws.recv(len(blob)) == blob
    ws.frame(0x9, b"tls?")
    fin, op, p = ws.recv_frame()
    assert (op, p) == (0xA, b"tls?")
    ws.frame(0x8, struct.pack("!H", 1000))
    assert ws.close_code() == 1000
    e = d.wait_log(lambda e: e.get("tunnel") == "close")
    assert e["bytes_to_origin"] == e["bytes_from_origin"] == len(blob), e


def test_a_revoked_tunnel_whose_client_reads_nothing_is_cut(latchd):
    """The close frame waits behind bytes the client does not read: the tunnel is cut anyway,
    its origin connection with it."""
    fast = Firehose()
    d = latchd({"apps": [tcp_app("fast", "fast.localhost", f"tcp://127.0.0.1:{fast.port}")]})
    try:
        ws = Ws(d.port, f"fast.localhost:{d.port}", [("cf-access-token", ak.issue(d, "fast", "bob@example.com"))])
        assert ws.status == 101
        deadline = time.monotonic() + 10
        while fast.sent < 1 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.05)
        ak.cli(d, "revoke", "--email", "bob@example.com", check=True)
        e = d.wait_log(lambda e: e.get("tunnel") == "close", timeout=15)
        assert e["close_reason"] == "revoked", e
        fast.conns[0].settimeout(0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fast.conns[0].send(b"z")      # the origin connection is closed: a write fails
            except socket.timeout:
                pass                          # still open, its buffers full
            except OSError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the origin connection of a revoked tunnel stayed open")
    finally:
        fast.close()


def test_logout_of_the_session_closes_its_tunnel(latchd, echo):
    """`latch logout` (POST /cdn-cgi/access/cli-logout, on the tcp app's own host) revokes the
    token's session: the tunnel opened with it closes; another session's stays open."""
    d = latchd({"apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]})
    host = f"tcp.localhost:{d.port}"
    tok, other = ak.issue(d, "tcp", "bob@example.com"), ak.issue(d, "tcp", "bob@example.com")
    ws = open_tunnel(d, "tcp.localhost", [("cf-access-token", tok)])
    keep = open_tunnel(d, "tcp.localhost", [("cf-access-token", other)])
    t0 = time.monotonic()
    r = get(d.port, "/cdn-cgi/access/cli-logout", host=host, method="POST", body=b"",
            headers=[("cf-access-token", tok)])
    assert r.status == 200 and r.json() == {"ended": True}, r
    code, took = closed_within(ws, t0=t0)
    assert code == 1008, code
    print(f"a logout closed the session's tunnel in {took:.3f} s")
    assert still_open(keep)
    e = d.wait_log(lambda e: e.get("tunnel") == "close")
    assert e["close_reason"] == "revoked", e


def test_random_bytes_after_the_upgrade(latchd, echo):
    """Garbage where frames belong (seeded, so a failure can be replayed): every tunnel ends
    with a close code of RFC 6455's or waits for more, the daemon stays up, nothing leaks."""
    import random
    rnd = random.Random(1313)
    d = gw(latchd, [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")])
    tok = ak.issue(d, "tcp", "bob@example.com")
    for i in range(40):
        ws = Ws(d.port, f"tcp.localhost:{d.port}", [("cf-access-token", tok)])
        assert ws.status == 101
        prefix = bytes([rnd.choice([0x82, 0x02, 0x80, 0x88, 0x89, 0x8A])]) if i % 2 else b""
        ws.s.sendall(prefix + bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 400))))
        code = ws.close_code(timeout=0.5)
        # -1: still waiting for the rest of a frame; a close echoes a valid code of the client's
        assert code in (-1, None, 0, 1002, 1003, 1009) or 3000 <= code <= 4999 or 1000 <= code <= 1014, code
        ws.close()
    assert d.alive()
    assert wait_metric(d, "latch_tunnels_open", 0) == 0
