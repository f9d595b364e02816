"""Upgrade (issue 10): latch tunnels WebSocket and nothing else. A request asking for anything
else (h2c, a list with websocket in it, two Upgrade fields, a POST, HTTP/1.0) goes to the origin
as an ordinary request, without Upgrade; and only a 101 whose one Upgrade field names websocket,
answering a request that asked for it, is tunnelled: any other 101 is a 502 and none of the
bytes after it reach the client."""

import base64
import os
import socket
import threading

import pytest

from harness import RawConn, bypass_app
from test_websocket import ws_origin  # noqa: F401  (a fixture: a real WebSocket origin)


def ws_request(host, port, upgrade="Upgrade: websocket\r\n", method="GET", version="1.1", extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    body = "Content-Length: 2\r\n" if method == "POST" else ""
    return (f"{method} /chat HTTP/{version}\r\nHost: {host}:{port}\r\n{upgrade}"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{body}{extra}\r\n" + ("{}" if method == "POST" else ""))


def up(value):
    return f"Upgrade: {value}\r\n"


@pytest.mark.parametrize("upgrade", [up("WebSocket"), up("websocket"), up("WEBSOCKET ")],
                         ids=["WebSocket", "websocket", "upper-ows"])
def test_websocket_any_case_is_tunnelled(latchd, ws_origin, upgrade):  # noqa: F811
    port, _ = ws_origin
    d = latchd({"apps": [bypass_app("ws", ["ws.localhost"], origin=f"http://127.0.0.1:{port}")]})
    with RawConn(d.port, timeout=5) as c:
        c.send(ws_request("ws.localhost", d.port, upgrade))
        status, _, headers, raw = c.read_head()
        assert status == 101, raw
        payload = b"hello"
        mask = os.urandom(4)
        c.send(bytes([0x81, 0x80 | len(payload)]) + mask +
               bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        assert c.read_exact(2 + len(payload)) == bytes([0x81, len(payload)]) + payload


NOT_TUNNELLED = {
    "websocket-and-h2c": dict(upgrade=up("websocket, h2c")),
    "h2c-first": dict(upgrade=up("h2c, websocket")),
    "h2c": dict(upgrade=up("h2c"), extra="HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
    "two-fields": dict(upgrade=up("websocket") + up("h2c")),
    "same-field-twice": dict(upgrade=up("websocket") + up("websocket")),
    "websocket-version": dict(upgrade=up("websocket/13")),
    "tls": dict(upgrade=up("TLS/1.2")),
    "post": dict(method="POST"),
    "http10": dict(version="1.0"),
}


@pytest.mark.parametrize("kw", NOT_TUNNELLED.values(), ids=NOT_TUNNELLED.keys())
def test_other_upgrades_go_as_ordinary_requests(latchd, origin, kw):
    d = latchd({"apps": [bypass_app("app", ["app.localhost"], origin=origin.url)]})
    with RawConn(d.port, timeout=5) as c:
        c.send(ws_request("app.localhost", d.port, **kw))
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("upgrade") is None
    got = {k.lower(): v for k, v in origin.requests[-1]["headers"]}
    assert "upgrade" not in got and "http2-settings" not in got, got
    assert "upgrade" not in got.get("connection", "").lower(), got


class RawOrigin:
    """Answers every request with `answer` (bytes), then writes `after` (what a tunnel would
    carry) and keeps the connection open; records the request heads."""

    def __init__(self, answer, after=b"TUNNELLED-BYTES"):
        self.answer, self.after = answer, after
        self.heads = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            buf = b""
            c.settimeout(10)
            try:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        break
                    buf += d
                self.heads.append(buf.split(b"\r\n\r\n")[0].decode("latin-1"))
                c.sendall(self.answer + self.after)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


SWITCH = {
    "h2c": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    "no-upgrade": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
    "list": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket, h2c\r\n\r\n",
    "two-fields": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\nUpgrade: h2c\r\n\r\n",
    "tls": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
    # websocket, but not an answer to this handshake's key (RFC 6455 §4.1): an origin that never
    # read it (a TCP service echoing, a confused intermediary) gets no tunnel
    "no-accept": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "another-key's-accept": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
}


@pytest.mark.parametrize("answer", SWITCH.values(), ids=SWITCH.keys())
def test_a_101_to_another_protocol_is_a_502(latchd, answer):
    o = RawOrigin(answer)
    try:
        d = latchd({"apps": [bypass_app("app", ["app.localhost"], origin=o.url)]})
        with RawConn(d.port, timeout=5) as c:
            c.send(ws_request("app.localhost", d.port))
            r = c.read_response()
            assert r.status == 502, r
            assert b"TUNNELLED" not in r.body
            # the connection goes on as HTTP; nothing the origin sent after its 101 arrives
            c.send(f"GET /next HTTP/1.1\r\nHost: app.localhost:{d.port}\r\nConnection: close\r\n\r\n")
            rest = c.read_response()
            assert b"TUNNELLED" not in rest.raw_head + rest.body
        assert "upgrade: websocket" in o.heads[0].lower()
    finally:
        o.close()


def test_a_101_nobody_asked_for_is_a_502(latchd):
    o = RawOrigin(SWITCH["h2c"].replace(b"h2c", b"websocket"))
    try:
        d = latchd({"apps": [bypass_app("app", ["app.localhost"], origin=o.url)]})
        with RawConn(d.port, timeout=5) as c:
            c.send(ws_request("app.localhost", d.port, up("h2c")))
            r = c.read_response()
            assert r.status == 502 and b"TUNNELLED" not in r.body, r
    finally:
        o.close()
