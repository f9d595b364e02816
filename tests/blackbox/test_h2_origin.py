"""HTTP/2 origins (issue 14): `h2c://` (prior knowledge) and `h2://` (TLS, ALPN h2, verified as
https is), against a real HTTP/2 peer (h2origin_kit.H2Origin on python3-h2, and Debian's h2o): bodies
both ways with checksums, multiplexing over few connections, trailers to an HTTP/1.1 client,
resets and deaths mid-response, GOAWAY, flow control as backpressure against a slow client,
TLS verification, timeouts."""

import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from harness import (Origin, RawConn, bypass_app, curl, free_port, have, repeating_file,
                     wait_port)
from h2origin_kit import H2Origin, pattern
from test_config_check import check

pytestmark = pytest.mark.skipif(not have("curl"), reason="needs curl")


@pytest.fixture
def h2origin():
    made = []

    def make(**kw):
        o = H2Origin(**kw)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


def gw(latchd, origin_url, workers=1, **extra):
    app = bypass_app("h2", ["pub.localhost"], origin=origin_url)
    app.update(extra.pop("app", {}))
    return latchd({"apps": [app], "workers": workers, **extra})


def raw_get(port, path, timeout=20):
    """GET over a raw HTTP/1.1 socket; returns the whole response's bytes (until close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: pub.localhost:{port}\r\nConnection: close\r\n\r\n".encode())
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out


def dechunk(body):
    """The data and the trailer lines of a chunked body (the whole of it, or AssertionError)."""
    data, trailers = b"", []
    while True:
        line, _, body = body.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            break
        data, body = data + body[:n], body[n + 2:]
    head, sep, _ = body.partition(b"\r\n\r\n")
    if not sep:
        assert body == b"\r\n", body
        return data, []
    return data, head.split(b"\r\n")


# --- configuration ------------------------------------------------------------------------------

def test_config_h2_schemes(tmp_path):
    base = ("listen: [{{address: '127.0.0.1:9'}}]\nauth_domain: auth.localhost\n"
            "state_dir: {d}\napps:\n  - name: a\n    domains: [a.localhost]\n    origin: {o}\n{extra}"
            "    policies: [{{name: p, decision: bypass, include: [{{everyone: {{}}}}]}}]\n")
    for url in ("h2c://127.0.0.1:50051", "h2://127.0.0.1:8443/base", "H2C://[::1]:7"):
        p = tmp_path / "ok.yaml"
        p.write_text(base.format(d=tmp_path / "s", o=url, extra=""))
        rc, out = check(p)
        assert rc == 0, (url, out)
    p = tmp_path / "bad.yaml"
    p.write_text(base.format(d=tmp_path / "s", o="h3://127.0.0.1:1", extra=""))
    rc, out = check(p)
    assert rc != 0
    assert f"{p}:7:13:" in out and "h2c://" in out, out
    # TLS settings for a cleartext HTTP/2 origin would be unused: refused, at their position
    p.write_text(base.format(d=tmp_path / "s", o="h2c://127.0.0.1:1",
                             extra="    origin_tls: {verify: false}\n"))
    rc, out = check(p)
    assert rc != 0 and f"{p}:8:" in out and "h2://" in out, out


# --- requests and responses ---------------------------------------------------------------------

def test_get_post_head_translation(latchd, h2origin):
    o = h2origin()
    d = gw(latchd, o.url() + "/base")
    r = curl(d.url(path="/echo?q=1"), "-H", "X-Real-IP: 6.6.6.6", "-H", "Connection: keep-alive, x-hop",
             "-H", "X-Hop: 1", "-H", "Cf-Access-Jwt-Assertion: forged", "-H", "TE: gzip")
    assert r.status == 200, r
    got = r.json()
    assert got["method"] == "GET" and got["path"] == "/base/echo?q=1"
    assert got["authority"] == f"pub.localhost:{d.port}" and got["scheme"] == "http"
    names = [k for k, _ in got["headers"]]
    assert "x-forwarded-for" in names and "x-request-id" in names and "x-forwarded-proto" in names
    for never in ("host", "connection", "x-hop", "x-real-ip", "cf-access-jwt-assertion",
                  "transfer-encoding", "keep-alive"):
        assert never not in names, (never, got["headers"])
    assert ["te", "trailers"] in got["headers"]
    assert all(k == k.lower() for k in names)
    # a body, with content-length and chunked
    r = curl(d.url(path="/echo"), "--data-binary", "hello h2")
    assert r.status == 200 and r.json()["body_sha256"] == hashlib.sha256(b"hello h2").hexdigest()
    r = curl(d.url(path="/echo"), "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked h2")
    assert r.status == 200, r
    assert r.json()["body_len"] == 10
    assert r.json()["body_sha256"] == hashlib.sha256(b"chunked h2").hexdigest()
    # HEAD: no body
    r = curl(d.url(path="/echo"), "-I")
    assert r.status == 200 and b"{" not in r.body and "content-length: " in r.body.decode().lower()


def test_large_bodies_both_ways(latchd, h2origin, tmp_path):
    o = h2origin()
    d = gw(latchd, o.url())
    f = tmp_path / "up.bin"
    sha = repeating_file(f, 24 << 20)
    for extra in ((), ("-H", "Transfer-Encoding: chunked")):
        r = curl(d.url(path="/echo"), "--data-binary", f"@{f}", *extra, timeout=120)
        assert r.status == 200, r
        assert r.json()["body_len"] == 24 << 20 and r.json()["body_sha256"] == sha
    n = 24 << 20
    r = curl(d.url(path=f"/big/{n}"), timeout=120)
    assert r.status == 200 and r.header_blocks[0][1].get("transfer-encoding") == "chunked", r
    assert len(r.body) == n and hashlib.sha256(r.body).digest() == hashlib.sha256(pattern(n)).digest()


def test_trailers_to_http1_client(latchd, h2origin):
    o = h2origin()
    d = gw(latchd, o.url())
    raw = raw_get(d.port, "/trailers")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nTransfer-Encoding: chunked" in head, head
    data, trailers = dechunk(body)
    assert data == b"hello"
    assert b"x-t1: a" in trailers and b"x-t2: b" in trailers, trailers
    # a Set-Cookie in trailers would set the gateway's cookie: never passed
    assert not any(t.lower().startswith(b"set-cookie") for t in trailers), trailers
    # a big body's digest arrives in its trailers, after every byte
    n = 3 << 20
    raw = raw_get(d.port, f"/big/{n}")
    data, trailers = dechunk(raw.partition(b"\r\n\r\n")[2])
    assert len(data) == n
    assert f"x-sha256: {hashlib.sha256(data).hexdigest()}".encode() in trailers
    # an HTTP/1.1 client's chunked trailers stay refused, whatever the origin
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    s.sendall(f"POST /echo HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n0\r\nCf-Access-Authenticated-User-Email: boss@example.com\r\n\r\n".encode())
    assert s.recv(65536).startswith(b"HTTP/1.1 400")
    s.close()
    assert not any(r["path"] == "/echo" for r in o.requests)
    # HTTP/1.0: no chunked coding, the end is the close
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    s.sendall(f"GET /trailers HTTP/1.0\r\nHost: pub.localhost:{d.port}\r\n\r\n".encode())
    out = b""
    while (c := s.recv(65536)):
        out += c
    s.close()
    assert out.endswith(b"\r\n\r\nhello") and b"chunked" not in out.lower(), out


def test_multiplexed_over_few_connections(latchd, h2origin):
    o = h2origin()
    d = gw(latchd, o.url())
    n = 40
    results = [None] * n

    def one(i):
        results[i] = curl(d.url(path=f"/delay/600?i={i}"), timeout=60)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(r.status == 200 for r in results), [r for r in results if r.status != 200][:3]
    assert sorted(r.json()["path"] for r in results) == sorted(f"/delay/600?i={i}" for i in range(n))
    # one worker: its pool holds at most 4 connections, each carrying several streams at once
    assert 1 <= o.connections <= 4, o.connections
    assert o.max_open_streams >= 2, o.max_open_streams


def test_origin_reset_and_death(latchd, h2origin):
    o = h2origin()
    d = gw(latchd, o.url())
    r = curl(d.url(path="/reset"))
    assert r.status == 502 and r.json()["error"] == "bad_gateway", r
    for path in ("/reset-mid", "/die-mid"):
        r = curl(d.url(path=path))
        # before the head went out: 502; after: the response is cut (never complete)
        assert r.status == 502 or r.rc != 0, (path, r)
    d.wait_log(lambda e: e["path"] == "/die-mid")
    assert "origin" in d.stderr() and "reset the stream" in d.stderr()
    # the other streams and the next requests do not suffer
    r = curl(d.url(path="/echo"))
    assert r.status == 200, r
    before = o.connections
    r = curl(d.url(path="/goaway"))
    assert r.status == 200, r
    for _ in range(3):
        assert curl(d.url(path="/echo")).status == 200
    assert o.connections == before + 1  # a new connection after the GOAWAY, then reused


def test_origin_down_and_timeouts(latchd, h2origin):
    port = free_port()
    d = gw(latchd, f"h2c://127.0.0.1:{port}",
           timeouts={"origin_connect": "2s", "origin_response": "1s"})
    r = curl(d.url(path="/echo"))
    assert r.status == 502, r
    o = h2origin()
    d2 = gw(latchd, o.url(), timeouts={"origin_response": "1s"})
    r = curl(d2.url(path="/delay/4000"))
    assert r.status == 504 and r.json()["error"] == "gateway_timeout", r
    assert curl(d2.url(path="/echo")).status == 200


def test_slow_client_holds_the_origin_back(latchd, h2origin):
    """A client that reads nothing: the origin can send only what latchd's stream window and the
    sockets' buffers take, not the whole body into latchd's memory."""
    o = h2origin()
    d = gw(latchd, o.url())
    n = 64 << 20
    s = socket.create_connection(("127.0.0.1", d.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(f"GET /big/{n} HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n".encode())
    path = f"/big/{n}"
    deadline = time.monotonic() + 20
    last = -1
    while time.monotonic() < deadline:  # until the origin stalls
        time.sleep(1.0)
        now = o.sent.get(path, 0)
        if now == last and now > 0:
            break
        last = now
    assert 0 < o.sent.get(path, 0) < 16 << 20, o.sent
    # the client reads again: the body goes on (its first MiBs, in order)
    s.settimeout(30)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    body = head.partition(b"\r\n\r\n")[2]
    while len(body) < (4 << 20) + 16:
        c = s.recv(1 << 20)
        assert c, len(body)
        body += c
    s.close()
    size, _, rest = body.partition(b"\r\n")
    first = int(size, 16)  # the first chunk: the body's first bytes
    assert first > 0 and rest[:first] == pattern(first)
    r = curl(d.url(path="/echo"))
    assert r.status == 200, r


# --- TLS ----------------------------------------------------------------------------------------

def ip_cert(d, name="origin"):
    key, crt = d / f"{name}-key.pem", d / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_h2_tls_verified(latchd, h2origin, tmp_path):
    crt, key = ip_cert(tmp_path)
    o = h2origin(tls_cert=(str(crt), str(key)))
    # untrusted: refused (the system's CAs do not know it)
    d = gw(latchd, o.url("h2"))
    r = curl(d.url(path="/echo"))
    assert r.status == 502, r
    d.wait_log(lambda e: e["path"] == "/echo")
    assert "TLS handshake failed" in d.stderr() and "certificate" in d.stderr(), d.stderr()
    # trusted through origin_tls.ca_file: answered over HTTP/2
    d2 = gw(latchd, o.url("h2"), app={"origin_tls": {"ca_file": str(crt)}})
    r = curl(d2.url(path="/echo"))
    assert r.status == 200 and r.json()["scheme"] == "https", r
    # a certificate for another name: refused even with the CA trusted
    other = tmp_path / "other"
    other.mkdir()
    ocrt, okey = ip_cert(other)
    d3 = gw(latchd, o.url("h2"), app={"origin_tls": {"ca_file": str(ocrt)}})
    assert curl(d3.url(path="/echo")).status == 502


def test_h2_tls_without_alpn_h2(latchd, tmp_path):
    """An https origin that speaks only HTTP/1.1: h2:// refuses it rather than sending it
    HTTP/2 frames."""
    import ssl
    crt, key = ip_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]

    def serve():
        try:
            c, _ = lsock.accept()
            c = ctx.wrap_socket(c, server_side=True)
            c.recv(100)
            c.close()
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    d = gw(latchd, f"h2://127.0.0.1:{port}", app={"origin_tls": {"ca_file": str(crt)}})
    r = curl(d.url(path="/echo"))
    assert r.status == 502, r
    d.wait_log(lambda e: e["path"] == "/echo")
    assert "ALPN" in d.stderr()
    lsock.close()


# --- a second real peer: Debian's h2o -----------------------------------------------------------

@pytest.mark.skipif(not shutil.which("h2o"), reason="needs h2o")
def test_h2o_origin(latchd, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    sha = repeating_file(docs / "f.bin", 5 << 20)
    port = free_port()
    conf = tmp_path / "h2o.conf"
    user = f"user: {getpass.getuser()}\n" if os.geteuid() == 0 else ""  # else it turns nobody
    conf.write_text(f"{user}listen:\n  host: 127.0.0.1\n  port: {port}\n"
                    f"pid-file: {tmp_path}/h2o.pid\nerror-log: {tmp_path}/h2o.err\n"
                    f"access-log: {tmp_path}/h2o.access\n"
                    f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {docs}\n")
    p = subprocess.Popen(["h2o", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 15, p)
        d = gw(latchd, f"h2c://127.0.0.1:{port}")
        r = curl(d.url(path="/f.bin"), timeout=60)
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == sha, r
        deadline = time.monotonic() + 10
        while "HTTP/2" not in (tmp_path / "h2o.access").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "HTTP/2" in (tmp_path / "h2o.access").read_text()
        assert curl(d.url(path="/missing")).status == 404
    finally:
        p.terminate()
        p.wait(10)


# --- an HTTP/2 client (r14-h2's transport) to an HTTP/2 origin ----------------------------------

def test_trailers_both_ways_http2_client(latchd, h2origin):
    from h2kit import Client, get
    o = h2origin()
    port = free_port()
    d = latchd({"listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
                "apps": [bypass_app("h2", ["pub.localhost"], origin=o.url())], "workers": 1}, port=port)
    c = Client(port)
    # the client's trailers reach the origin as HTTP/2 trailers, the identity ones dropped
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, get("pub.localhost", "/echo", "POST"))
    c.conn.send_data(sid, b"abc")
    c.conn.send_headers(sid, [(b"x-checksum", b"900150983cd24fb0"),
                              (b"cf-access-authenticated-user-email", b"boss@example.com")], end_stream=True)
    c.flush()
    status, _, body, reset = c.response(sid)
    assert status == 200 and reset is None, (status, body)
    got = json.loads(body)
    assert got["body_len"] == 3
    assert got["trailers"] == [["x-checksum", "900150983cd24fb0"]], got["trailers"]
    # the origin's trailers reach the client as HTTP/2 trailers (Set-Cookie dropped)
    sid = c.request(get("pub.localhost", "/trailers"))
    status, headers, body, reset = c.response(sid)
    assert status == 200 and body == b"hello" and reset is None
    assert headers.get("x-t1") == "a" and headers.get("x-t2") == "b", headers
    assert "set-cookie" not in headers
    trailer_events = [e for e in c.events if getattr(e, "stream_id", None) == sid
                      and type(e).__name__ == "TrailersReceived"]
    assert len(trailer_events) == 1
    # an origin reset: the client's stream is answered 502 before the head, or reset after it
    sid = c.request(get("pub.localhost", "/reset"))
    status, _, _, reset = c.response(sid)
    assert status == 502 or reset is not None
    sid = c.request(get("pub.localhost", "/reset-mid"))
    status, _, _, reset = c.response(sid)
    assert status == 502 or reset is not None
    # a big body through both sides' flow control
    n = 8 << 20
    sid = c.request(get("pub.localhost", f"/big/{n}"))
    status, headers, body, reset = c.response(sid, timeout=60)
    assert status == 200 and len(body) == n and headers.get("x-sha256") == hashlib.sha256(body).hexdigest()
    c.close()
