"""WebSockets over HTTP/2 (RFC 8441): latchd announces SETTINGS_ENABLE_CONNECT_PROTOCOL; an
extended CONNECT (:protocol websocket) is admitted as any request (401 without a token, the
cross-site Origin refused), reaches an http app's WebSocket origin as the HTTP/1.1 handshake
(the origin's 101 becomes :status 200) and a tcp:// app's tunnel (its WebSocket ended by
latchd, as over HTTP/1.1); the stream is then a byte tunnel, while other streams of the
connection go on. Any other :protocol, or a CONNECT without one, is refused."""

import os
import struct
import time

import h2.events
import h2.settings
import pytest

import authkit as ak
from h2kit import Client, get
from harness import bypass_app, free_port
from test_tunnel import TcpEcho, tcp_app
from test_websocket import ws_origin  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(120)


def h2_gw(latchd, apps):
    port = free_port()
    return latchd({"listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}], "apps": apps},
                  port=port)


def settings_seen(c):
    return any(isinstance(e, h2.events.RemoteSettingsChanged) for e in c.events)


def connect_client(d):
    c = Client(d.port)
    assert c.pump(settings_seen), "no SETTINGS from the server"
    return c


def ws_connect(c, host, path="/", protocol=b"websocket", extra=(), method=b"CONNECT"):
    hdrs = [(b":method", method), (b":scheme", b"http"), (b":authority", host.encode()), (b":path", path.encode())]
    if protocol is not None:
        hdrs.insert(1, (b":protocol", protocol))
    hdrs += [(b"sec-websocket-version", b"13")] + [(k.encode(), v.encode()) for k, v in extra]
    return c.request(hdrs, end=False)


def head_of(c, sid):
    for e in c.events:
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
            return {k.decode(): v.decode() for k, v in e.headers}
    return None


def reset_of(c, sid):
    for e in c.events:
        if isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
            return e.error_code
    return None


def wait_head(c, sid):
    c.pump(lambda c: head_of(c, sid) is not None or reset_of(c, sid) is not None or c.ended(sid))
    return head_of(c, sid)


def frame(payload, opcode=0x1):
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def data_of(c, sid):
    return b"".join(e.data for e in c.events if isinstance(e, h2.events.DataReceived) and e.stream_id == sid)


def read_frame(c, sid, skip=0):
    """The payload of the first unmasked server frame past `skip` bytes of the stream's DATA."""
    def complete(c):
        b = data_of(c, sid)[skip:]
        return len(b) >= 2 and len(b) >= 2 + (b[1] & 0x7f)
    assert c.pump(complete), (data_of(c, sid), c.events[-5:])
    b = data_of(c, sid)[skip:]
    n = b[1] & 0x7f
    assert n < 126 and not b[1] & 0x80, b
    return b[0] & 0x0f, b[2:2 + n], skip + 2 + n


def echo_closed(echo, timeout=10):
    """Whether the TCP echo's connections all closed (polled)."""
    deadline = time.monotonic() + timeout
    while echo.open and time.monotonic() < deadline:
        time.sleep(0.05)
    return echo.open == 0


def open_tcp_tunnel(d, echo):
    """A connection with a tunnel to the tcp.localhost app, one frame echoed through it:
    (client, token, stream id)."""
    c = connect_client(d)
    tok = ak.issue(d, "tcp", "bob@example.com")
    sid = ws_connect(c, f"tcp.localhost:{d.port}", extra=[("cf-access-token", tok)])
    assert wait_head(c, sid)[":status"] == "200"
    c.conn.send_data(sid, frame(b"x", opcode=0x2))
    c.flush()
    assert read_frame(c, sid)[1] == b"x" and echo.open == 1
    return c, tok, sid


def stream_ended(c, sid):
    return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in c.events)


def test_settings_announce_extended_connect(latchd):
    d = h2_gw(latchd, [bypass_app("a", ["a.localhost"])])
    c = connect_client(d)
    got = [e.changed_settings for e in c.events if isinstance(e, h2.events.RemoteSettingsChanged)][0]
    assert got[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL].new_value == 1, got
    c.close()


def test_websocket_origin_over_h2_and_other_streams_go_on(latchd, ws_origin):  # noqa: F811
    port, log = ws_origin
    d = h2_gw(latchd, [bypass_app("ws", ["ws.localhost"], origin=f"http://127.0.0.1:{port}")])
    c = connect_client(d)
    host = f"ws.localhost:{d.port}"
    sid = ws_connect(c, host, "/chat/../room?x=1")
    h = wait_head(c, sid)
    assert h and h[":status"] == "200", (h, reset_of(c, sid))
    assert not {"sec-websocket-accept", "upgrade", "connection"} & set(h), h
    c.conn.send_data(sid, frame(b"hello"))
    c.flush()
    op, payload, off = read_frame(c, sid)
    assert (op, payload) == (1, b"hello")
    # the path the origin's handshake got: normalized as any request's
    c.conn.send_data(sid, frame(b"path?"))
    c.flush()
    op, payload, off = read_frame(c, sid, off)
    assert payload == b"/room?x=1", payload
    # another stream on the connection is answered while the tunnel is open
    st, _, body, _ = c.response(c.request(get(host, "/")), timeout=20)
    assert st is not None
    c.conn.send_data(sid, frame(b"again"))
    c.flush()
    assert read_frame(c, sid, off)[1] == b"again"
    # END_STREAM from the client: the origin hears the end, and the stream ends both ways
    c.conn.end_stream(sid)
    c.flush()
    assert c.pump(lambda c: stream_ended(c, sid) or reset_of(c, sid) is not None)
    line = d.wait_log(lambda l: l.get("app") == "ws" and l.get("path") == "/room")
    assert line, line
    c.close()


def test_tcp_app_over_h2_tunnel_and_end_stream_shuts_origin(latchd):
    echo = TcpEcho()
    try:
        d = h2_gw(latchd, [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")])
        host = f"tcp.localhost:{d.port}"
        c = connect_client(d)
        # no token: 401, and the service hears nothing
        sid = ws_connect(c, host)
        h = wait_head(c, sid)
        assert h and h[":status"] == "401", h
        # a page of another site: refused as over HTTP/1.1
        tok = ak.issue(d, "tcp", "bob@example.com")
        sid = ws_connect(c, host, extra=[("cf-access-token", tok), ("origin", "https://evil.example"),
                                         ("accept", "application/json")])
        h = wait_head(c, sid)
        assert h and h[":status"] == "403", h
        assert echo.accepts == 0
        # admitted: binary frames carried to the service and back
        sid = ws_connect(c, host, extra=[("cf-access-token", tok)])
        h = wait_head(c, sid)
        assert h and h[":status"] == "200" and "sec-websocket-accept" not in h, h
        c.conn.send_data(sid, frame(b"PING-1", opcode=0x2))
        c.flush()
        op, payload, off = read_frame(c, sid)
        assert (op, payload) == (2, b"PING-1")
        assert echo.accepts == 1 and echo.open == 1
        # another stream meanwhile
        assert c.response(c.request(get(host, "/", extra=[("cf-access-token", tok)])))[0] == 426
        # END_STREAM: the service's side is shut (the echo closes on EOF)
        c.conn.end_stream(sid)
        c.flush()
        assert echo_closed(echo)
        c.close()
    finally:
        echo.close()


@pytest.mark.parametrize("protocol,method", [(b"h2c", b"CONNECT"), (b"connect-udp", b"CONNECT"),
                                             (None, b"CONNECT")])
def test_other_protocols_refused(latchd, ws_origin, protocol, method):  # noqa: F811
    port, log = ws_origin
    d = h2_gw(latchd, [bypass_app("ws", ["ws.localhost"], origin=f"http://127.0.0.1:{port}")])
    c = connect_client(d)
    if protocol is None:  # a proxy's CONNECT (no :scheme, no :path)
        sid = c.request([(b":method", b"CONNECT"), (b":authority", f"ws.localhost:{d.port}".encode())], end=False)
    else:
        sid = ws_connect(c, f"ws.localhost:{d.port}", protocol=protocol, method=method)
    h = wait_head(c, sid)
    assert (h and h[":status"] in ("400", "501")) or reset_of(c, sid) is not None, (h, reset_of(c, sid))
    assert log.read_text() == ""
    c.close()


def test_no_2xx_unless_a_websocket_opened(latchd):
    """A 2xx to an extended CONNECT tells the client its WebSocket opened (RFC 8441 §5): an
    origin that answers the handshake 200 instead of 101 gets the client a 502; the gateway's own
    endpoints and the echo origin (which speak no WebSocket) a 501; an HTTP/2 origin (no
    WebSockets carried to those) a 502."""
    from harness import Origin
    from h2origin_kit import H2Origin
    o, o2 = Origin(), H2Origin()
    try:
        d = h2_gw(latchd, [bypass_app("o", ["o.localhost"], origin=o.url), bypass_app("e", ["e.localhost"]),
                           bypass_app("g", ["g.localhost"], origin=f"h2c://127.0.0.1:{o2.port}")])
        c = connect_client(d)
        for host, path, want in ((f"o.localhost:{d.port}", "/", "502"), (f"e.localhost:{d.port}", "/", "501"),
                                 (f"e.localhost:{d.port}", "/cdn-cgi/access/get-identity", None),
                                 (f"g.localhost:{d.port}", "/", "502")):
            sid = ws_connect(c, host, path)
            h = wait_head(c, sid)
            assert h is not None and not h[":status"].startswith("2"), (host, path, h)
            assert want is None or h[":status"] == want, (host, path, h)
        c.close()
    finally:
        o.close()
        o2.close()


def test_reset_ends_the_tunnel_and_origin_close_ends_the_stream(latchd, ws_origin):  # noqa: F811
    """RST_STREAM from the client closes the tunnel's origin connection (the other streams go
    on); the origin's end (its close after a close frame) reaches the client as END_STREAM."""
    echo = TcpEcho()
    try:
        port, _ = ws_origin
        d = h2_gw(latchd, [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}"),
                           bypass_app("ws", ["ws.localhost"], origin=f"http://127.0.0.1:{port}")])
        c, tok, sid = open_tcp_tunnel(d, echo)
        c.conn.reset_stream(sid)
        c.flush()
        assert echo_closed(echo)
        # the connection goes on: a WebSocket to the origin, closed by the origin after our close
        sid = ws_connect(c, f"ws.localhost:{d.port}", "/bye")
        assert wait_head(c, sid)[":status"] == "200"
        c.conn.send_data(sid, frame(struct.pack(">H", 1000), opcode=0x8))
        c.flush()
        op, payload, _ = read_frame(c, sid)
        assert op == 0x8, (op, payload)
        assert c.pump(lambda c: stream_ended(c, sid) or reset_of(c, sid) is not None)
        assert stream_ended(c, sid), reset_of(c, sid)
        c.close()
    finally:
        echo.close()


def test_idle_tunnel_closed_connection_goes_on(latchd):
    """timeouts.tunnel_idle closes a tunnel over HTTP/2 as over HTTP/1.1 (its stream, and the
    service's connection); the HTTP/2 connection and its other streams go on."""
    echo = TcpEcho()
    try:
        port = free_port()
        d = latchd({"listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
                    "timeouts": {"tunnel_idle": "1s"},
                    "apps": [tcp_app("tcp", "tcp.localhost", f"tcp://127.0.0.1:{echo.port}")]}, port=port)
        c, tok, sid = open_tcp_tunnel(d, echo)
        assert c.pump(lambda c: c.ended(sid), timeout=30)
        assert echo_closed(echo)
        assert c.goaway() is None
        assert c.response(c.request(get(f"tcp.localhost:{d.port}", "/", extra=[("cf-access-token", tok)])))[0] == 426
        c.close()
    finally:
        echo.close()
