"""HTTP/2 to clients (docs/configuration.md, listeners' `http2`): h2 by ALPN on TLS listeners,
h2c with prior knowledge where configured; every stream judged as an HTTP/1.1 request is
(routing, normalization, identity headers, policy, logs), strict per stream (RFC 9113 §8)."""

import subprocess

import pytest

import h2kit
from h2kit import Client, get
from harness import Origin, block_app, bypass_app, curl, free_port
from test_tls import make_cert


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("h2certs"), "a.localhost")


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture
def gw(latchd, cert, origin):
    port, h2c = free_port(), free_port()
    d = latchd({
        "listen": [{"address": f"127.0.0.1:{port}", "tls": {"cert": str(cert[0]), "key": str(cert[1])}},
                   {"address": f"127.0.0.1:{h2c}", "http2": "prior_knowledge"}],
        "auth_domain": f"auth.localhost:{port}",
        "apps": [bypass_app("a", ["a.localhost"]), bypass_app("o", ["o.localhost"], origin=origin.url),
                 block_app("closed", ["closed.localhost"])],
    }, port=port, extra_ports=[h2c])
    d.h2c = h2c
    return d


def tls_curl(d, cert, host, path, *args):
    trust = ["--cacert", str(cert[0])] if host == "a.localhost" else ["-k"]
    return curl(f"https://{host}:{d.port}{path}", "--http2", "--resolve", f"{host}:{d.port}:127.0.0.1",
                *trust, *args)


def test_curl_h2_over_tls_alpn(gw, cert):
    r = tls_curl(gw, cert, "a.localhost", "/x/../y?q=1")
    assert r.rc == 0 and r.header_blocks[-1][0].startswith("HTTP/2 200"), r
    j = r.json()
    assert j["path"] == "/y" and j["query"] == "q=1"
    assert j["headers"]["x-forwarded-proto"] == "https"
    assert j["headers"]["host"] == f"a.localhost:{gw.port}"
    line = gw.wait_log(lambda l: l.get("path") == "/y")
    assert line["status"] == 200 and line["app"] == "a"


def test_http1_still_offered_by_alpn(gw, cert):
    r = curl(f"https://a.localhost:{gw.port}/", "--http1.1", "--resolve", f"a.localhost:{gw.port}:127.0.0.1",
             "--cacert", str(cert[0]))
    assert r.rc == 0 and r.header_blocks[-1][0].startswith("HTTP/1.1 200"), r


def test_curl_h2c_prior_knowledge(gw):
    r = curl(f"http://127.0.0.1:{gw.h2c}/pk", "--http2-prior-knowledge", "-H", "Host: a.localhost")
    assert r.rc == 0 and r.header_blocks[-1][0].startswith("HTTP/2 200"), r
    assert r.json()["path"] == "/pk"


def test_h2c_not_configured_is_refused(gw):
    # the TLS-less default listener has no prior knowledge: the preface is not HTTP/1.1
    port = free_port()
    r = curl(f"http://127.0.0.1:{gw.h2c}/", "--http1.1", "-H", "Host: a.localhost")
    assert r.status == 200  # the h2c listener still speaks HTTP/1.1 to HTTP/1.1 clients
    del port


def test_http2_false_turns_h2_off(latchd, cert):
    port = free_port()
    d = latchd({"listen": [{"address": f"127.0.0.1:{port}", "http2": False,
                            "tls": {"cert": str(cert[0]), "key": str(cert[1])}}],
                "auth_domain": f"auth.localhost:{port}", "apps": [bypass_app("a", ["a.localhost"])]}, port=port)
    r = tls_curl(d, cert, "a.localhost", "/")
    assert r.rc == 0 and r.header_blocks[-1][0].startswith("HTTP/1.1 200"), r


def test_origin_body_both_ways_and_big_response(gw, cert, origin, tmp_path):
    body = bytes(range(256)) * 800  # 200 KiB, more than a window
    f = tmp_path / "up"
    f.write_bytes(body)
    r = tls_curl(gw, cert, "o.localhost", "/up", "--data-binary", f"@{f}")
    assert r.rc == 0 and r.status == 200, r
    got = origin.requests[-1]
    assert got["body"] == body and got["version"] == "HTTP/1.1"
    # without a content-length the body reaches the origin chunked, whole
    r = curl(f"http://127.0.0.1:{gw.h2c}/chunked", "--http2-prior-knowledge", "-H", "Host: o.localhost",
             "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}")
    assert r.status == 200, r
    assert origin.requests[-1]["body"] == body


def test_many_streams_one_connection_nghttp(gw):
    urls = [f"http://127.0.0.1:{gw.h2c}/n{i}" for i in range(20)]
    p = subprocess.run(["nghttp", "-n", "-s", "-H", ":authority: a.localhost", *urls],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for i in range(20):
        gw.wait_log(lambda l, i=i: l.get("path") == f"/n{i}" and l.get("status") == 200)


def test_identity_headers_stripped_as_on_http1(gw):
    c = Client(gw.h2c)
    sid = c.request(get("a.localhost", "/id", extra=[
        ("cf-access-authenticated-user-email", "boss@example.com"), ("x-forwarded-for", "6.6.6.6"),
        ("cf-access-jwt-assertion", "forged"), ("x-real-ip", "6.6.6.6"), ("x_real_ip", "6.6.6.6"),
        ("x-forwarded-host", "evil"), ("cookie", "a=1"), ("cookie", "b=2")]))
    status, headers, body, reset = c.response(sid)
    assert status == 200, (status, reset)
    import json
    h = json.loads(body)["headers"]
    assert "cf-access-authenticated-user-email" not in h and "cf-access-jwt-assertion" not in h
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-host"] == f"a.localhost:{gw.h2c}"
    assert "x-real-ip" not in h and "x_real_ip" not in h
    assert h["cookie"] == "a=1; b=2"  # RFC 9113 §8.2.3: one field to HTTP/1.1
    c.close()


def test_policy_applies_per_stream(gw):
    c = Client(gw.h2c)
    s1 = c.request(get("closed.localhost", "/"))
    s2 = c.request(get("a.localhost", "/ok"))
    assert c.response(s1)[0] == 403
    assert c.response(s2)[0] == 200
    c.close()


@pytest.mark.parametrize("path,status", [("/a/%2e%2e/b", 200), ("/%2F", 400), ("/a%00", 400), ("*", None),
                                         ("/" + "a" * 9000, 414)])
def test_path_judged_as_http1(gw, path, status):
    c = Client(gw.h2c)
    sid = c.request(get("a.localhost", path))
    st, headers, body, reset = c.response(sid)
    if status is None:  # not origin-form: malformed (nghttp2) or refused like HTTP/1.1's (400)
        assert st == 400 or reset == h2kit.PROTOCOL_ERROR, (st, reset)
    else:
        assert st == status, (st, reset, body[:200])
    if status == 200:
        import json
        assert json.loads(body)["path"] == "/b"
    c.close()


MALFORMED = {
    "upper-case name": [("X-Bad", "1")],
    "connection": [("connection", "close")],
    "keep-alive": [("keep-alive", "1")],
    "transfer-encoding": [("transfer-encoding", "chunked")],
    "upgrade": [("upgrade", "websocket")],
    "proxy-connection": [("proxy-connection", "x")],
    "te other than trailers": [("te", "gzip")],
    "CR in value": [("x-a", "1\r\nx-injected: 1")],
    "LF in value": [("x-a", "1\nx-injected: 1")],
    "NUL in value": [("x-a", "1\x00")],
    "colon in name": [("x:a", "1")],
    "space in name": [("x a", "1")],
    "pseudo after regular": [("x-a", "1"), (":foo", "bar")],
    "unknown pseudo": [(":foo", "bar")],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_reset_protocol_error(gw, origin, name):
    c = Client(gw.h2c)
    sid = c.request(get("o.localhost", "/m", extra=MALFORMED[name]))
    st, headers, body, reset = c.response(sid)
    assert st is None and reset == h2kit.PROTOCOL_ERROR, (st, reset)
    # the connection goes on: the next stream is answered
    s2 = c.request(get("a.localhost", "/after"))
    assert c.response(s2)[0] == 200
    assert not origin.requests, "a malformed request reached the origin"
    c.close()


@pytest.mark.parametrize("headers", [
    [(b":method", b"GET"), (b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.localhost"), (b":path", b"/")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.localhost")],
    [(b":scheme", b"http"), (b":authority", b"a.localhost"), (b":path", b"/")],
    [(b":method", b"GET"), (b":authority", b"a.localhost"), (b":path", b"/")],
], ids=["duplicate :method", "no :path", "no :method", "no :scheme"])
def test_pseudo_headers_rfc9113_8_3(gw, headers):
    c = Client(gw.h2c)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, headers, end_stream=True)
    c.flush()
    st, _, _, reset = c.response(sid)
    assert st is None and reset == h2kit.PROTOCOL_ERROR, (st, reset)
    c.close()


def test_authority_and_host_disagree_400(gw, origin):
    c = Client(gw.h2c)
    sid = c.request(get("o.localhost", "/", extra=[("host", "a.localhost")]))
    assert c.response(sid)[0] == 400
    sid = c.request(get("o.localhost", "/same", extra=[("host", "o.localhost")]))
    assert c.response(sid)[0] == 200
    assert [r["path"] for r in origin.requests] == ["/same"]
    # host alone is enough (RFC 9113 §8.3.1)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/h"),
                              (b"host", b"o.localhost")], end_stream=True)
    c.flush()
    assert c.response(sid)[0] == 200
    c.close()


def test_content_length_disagreeing_with_data(gw, origin):
    c = Client(gw.h2c)
    sid = c.request(get("o.localhost", "/cl", "POST", extra=[("content-length", "10")]), body=b"12345")
    st, _, _, reset = c.response(sid)
    assert reset == h2kit.PROTOCOL_ERROR, (st, reset)
    sid = c.request(get("o.localhost", "/cl2", "POST", extra=[("content-length", "3")]), body=b"12345")
    st, _, _, reset = c.response(sid)
    assert reset == h2kit.PROTOCOL_ERROR, (st, reset)
    assert not any(r["path"] in ("/cl", "/cl2") and r["body"] for r in origin.requests if len(r["body"]) != int(dict(r["headers"]).get("Content-Length", dict(r["headers"]).get("content-length", "0"))))
    c.close()


def test_header_list_too_large_431(gw):
    c = Client(gw.h2c)
    sid = c.request(get("a.localhost", "/", extra=[(f"x-{i}", "v" * 1000) for i in range(40)]))
    assert c.response(sid)[0] == 431
    c.close()


def test_request_trailers_dropped_to_http1_origin(gw, origin):
    c = Client(gw.h2c)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, get("o.localhost", "/t", "POST"))
    c.conn.send_data(sid, b"abc")
    c.conn.send_headers(sid, [(b"x-checksum", b"1"), (b"cf-access-authenticated-user-email", b"boss@example.com")],
                        end_stream=True)
    c.flush()
    assert c.response(sid)[0] == 200
    assert origin.requests[-1]["body"] == b"abc"
    c.close()


@pytest.mark.parametrize("listener,top,where,words", [
    ('{address: "127.0.0.1:1", http2: true}', "", (2, 37), "needs 'tls'"),
    ('{address: "127.0.0.1:1", http2: yes}', "", (2, 37), "true, false or prior_knowledge"),
    ('{address: "127.0.0.1:1", http2: prior_knowledge, tls: {cert: /nonexistent, key: /nonexistent}}', "",
     (2, 37), "for listeners without 'tls'"),
    ('{address: "127.0.0.1:1"}', "http2: {max_concurrent_streams: 0}\n", (3, 33), "from 1 to 1000"),
    ('{address: "127.0.0.1:1"}', "http2: {initial_window_size: 99999999}\n", (3, 30), "from 1024 to 8388608"),
    ('{address: "127.0.0.1:1"}', "http2: {max_header: 1}\n", (3, 9), "unknown key 'max_header'"),
])
def test_http2_config_errors_name_file_line_col(tmp_path, listener, top, where, words):
    from test_config_check import check, error_lines
    p = tmp_path / "latch.yaml"
    p.write_text(f"listen:\n  - {listener}\n{top}state_dir: {tmp_path}/s\n")
    rc, out = check(p)
    assert rc != 0, out
    errs = error_lines(p, out)
    assert any((l, c) == where and words in m for l, c, m in errs), (errs, out)


def test_tcp_app_over_h2_refused_as_http1_without_upgrade(latchd):
    """A tcp:// app is reached by a WebSocket upgrade; over HTTP/2 that is an extended CONNECT
    (RFC 8441: test_h2_websocket.py): a plain GET gets the 426 HTTP/1.1 gets without an upgrade,
    no connection to the service, and no connection-specific field (upgrade) in the answer."""
    import socket
    svc = socket.socket()
    svc.bind(("127.0.0.1", 0))
    svc.listen(8)
    svc.settimeout(0.5)
    port = free_port()
    d = latchd({"listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
                "apps": [bypass_app("t", ["t.localhost"], origin=f"tcp://127.0.0.1:{svc.getsockname()[1]}")]},
               port=port)
    c = Client(d.port)
    st, headers, body, reset = c.response(c.request(get("t.localhost", "/")))
    assert st == 426 and "upgrade" not in headers and "connection" not in headers, (st, headers, reset)
    with pytest.raises(OSError):
        svc.accept()
    c.close()
    svc.close()


def test_http1_origin_chunked_trailers_reach_h2_client(gw, origin):
    """An HTTP/1.1 origin's chunked trailers reach an HTTP/2 client as HTTP/2 trailers (a
    HEADERS after the DATA), filtered as an HTTP/2 origin's are: hop-by-hop fields, Set-Cookie,
    HSTS and framing dropped."""
    import h2.events
    origin.framing = "chunked"
    origin.trailer = (b"X-Trailer: t\r\nX-Checksum:  abc \r\nSet-Cookie: CF_Authorization=evil\r\n"
                      b"Strict-Transport-Security: max-age=1\r\nKeep-Alive: timeout=5\r\n"
                      b"Content-Length: 3\r\n")
    c = Client(gw.h2c)
    sid = c.request(get("o.localhost", "/chunky"))
    st, _headers, body, reset = c.response(sid)
    assert st == 200 and reset is None and body.startswith(b"{"), (st, body, reset)
    trailers = [dict((k.decode(), v.decode()) for k, v in e.headers) for e in c.events
                if isinstance(e, h2.events.TrailersReceived) and e.stream_id == sid]
    assert trailers == [{"x-trailer": "t", "x-checksum": "abc"}], trailers
    # the connection goes on: another stream on it is answered
    assert c.response(c.request(get("o.localhost", "/next")))[0] == 200
    c.close()
