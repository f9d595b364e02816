"""HTTP/1.1 through latchd (SPEC.md §3, §8): the echo origin, GET/POST with Content-Length and
chunked bodies, keep-alive, pipelining, Expect: 100-continue, forwarding headers, hop-by-hop
removal, size limits (414, 431) and unknown hosts (404, nothing forwarded)."""

import hashlib
import json
import os
import re
import time

import pytest

from harness import HEX_RE, RawConn, block_app, bypass_app, allow_app, curl, get


@pytest.fixture
def gw(latchd, origin):
    """A daemon with an echo app, a bypass app to the recording origin and a blocked app."""
    return latchd({"apps": [bypass_app("pub", ["pub.localhost"]),
                            bypass_app("rec", ["rec.localhost"], origin=origin.url),
                            block_app("closed", ["closed.localhost"], origin=origin.url),
                            allow_app("staff", ["staff.localhost"], origin=origin.url)]})


def test_get_through_echo(gw):
    r = curl(gw.url("pub.localhost", "/hello/world?x=1&y=%2F"))
    assert r.rc == 0 and r.status == 200, r
    j = r.json()
    assert j["method"] == "GET"
    assert j["path"] == "/hello/world"
    assert j["query"] == "x=1&y=%2F"
    assert "1.1" in str(j["version"])
    assert j["body_bytes"] == 0
    assert j["body_sha256"] == hashlib.sha256(b"").hexdigest()
    assert HEX_RE.match(j["request_id"]), j
    h = j["headers"]
    assert h["host"] == f"pub.localhost:{gw.port}"
    assert h["x-request-id"] == j["request_id"]
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == f"pub.localhost:{gw.port}"
    assert all(k == k.lower() for k in h), h


def test_echo_joins_duplicate_headers(gw):
    r = get(gw.port, "/", headers=[("X-Dup", "a"), ("X-Dup", "b"), ("Accept", "text/plain")])
    assert r.status == 200, r
    assert r.json()["headers"]["x-dup"] == "a, b"


def test_post_content_length(gw):
    body = os.urandom(100_000)
    r = get(gw.port, "/upload", method="POST", body=body)
    assert r.status == 200, r
    j = r.json()
    assert j["method"] == "POST"
    assert j["body_bytes"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_post_chunked_raw(gw):
    parts = [os.urandom(n) for n in (1, 4096, 70000, 3)]
    data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with RawConn(gw.port) as c:
        c.send(f"POST /c HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n".encode() + data)
        r = c.read_response()
    assert r.status == 200, r
    j = r.json()
    whole = b"".join(parts)
    assert j["body_bytes"] == len(whole)
    assert j["body_sha256"] == hashlib.sha256(whole).hexdigest()


def test_post_chunked_with_curl_to_real_origin(gw, origin, tmp_path):
    f = tmp_path / "body"
    body = os.urandom(300_000)
    f.write_bytes(body)
    r = curl(gw.url("rec.localhost", "/up"), "-H", "Transfer-Encoding: chunked",
             "--data-binary", f"@{f}")
    assert r.status == 200, r
    got = origin.requests[-1]
    assert got["method"] == "POST"
    assert got["body_bytes"] == len(body)
    assert got["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_keep_alive(gw):
    with RawConn(gw.port) as c:
        for i in range(5):
            c.send(f"GET /ka/{i} HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n\r\n")
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["path"] == f"/ka/{i}"
        assert not c.closed_within(0.3), "keep-alive connection closed"


def test_pipelining_responses_in_order(gw):
    reqs = b""
    for i in range(8):
        if i == 3:
            reqs += (f"POST /p/{i} HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n"
                     "Content-Length: 5\r\n\r\nhello").encode()
        elif i == 5:
            reqs += (f"POST /p/{i} HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").encode()
        elif i == 6:
            reqs += f"HEAD /p/{i} HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n\r\n".encode()
        else:
            reqs += f"GET /p/{i} HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\n\r\n".encode()
    with RawConn(gw.port) as c:
        c.send(reqs)
        for i in range(8):
            r = c.read_response(head_request=(i == 6))
            assert r.status == 200, (i, r)
            if i != 6:
                j = r.json()
                assert j["path"] == f"/p/{i}", (i, j)
                if i == 3:
                    assert j["body_bytes"] == 5
                if i == 5:
                    assert j["body_bytes"] == 3


def test_pipelining_to_real_origin(gw, origin):
    reqs = b"".join(f"GET /q/{i} HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n\r\n".encode()
                    for i in range(6))
    with RawConn(gw.port) as c:
        c.send(reqs)
        for i in range(6):
            r = c.read_response()
            assert r.status == 200, r
            assert r.json()["target"] == f"/q/{i}"


def test_connection_close_honoured(gw):
    with RawConn(gw.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.closed_within(2)


def test_http10_request(gw):
    with RawConn(gw.port) as c:
        c.send(f"GET /old HTTP/1.0\r\nHost: pub.localhost:{gw.port}\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["path"] == "/old"
        assert c.closed_within(2), "HTTP/1.0 without keep-alive must be closed"


def test_expect_100_continue_allowed(gw):
    with RawConn(gw.port, timeout=5) as c:
        c.send(f"POST /e HTTP/1.1\r\nHost: pub.localhost:{gw.port}\r\nContent-Length: 11\r\n"
               "Expect: 100-continue\r\n\r\n")
        status, reason, headers, raw = c.read_head()
        assert status == 100, raw
        assert raw.startswith(b"HTTP/1.1 100 Continue"), raw
        c.send(b"hello world")
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_bytes"] == 11


def test_expect_100_continue_to_real_origin(gw, origin):
    with RawConn(gw.port, timeout=5) as c:
        c.send(f"PUT /e HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\nContent-Length: 3\r\n"
               "Expect: 100-continue\r\n\r\n")
        status, _, _, raw = c.read_head()
        assert status == 100, raw
        c.send(b"abc")
        r = c.read_response()
    assert r.status == 200, r
    assert origin.requests[-1]["body"] == b"abc"


@pytest.mark.parametrize("host,status", [("closed.localhost", 403), ("staff.localhost", 401)])
def test_expect_100_continue_refused_request_gets_no_100(gw, origin, host, status):
    with RawConn(gw.port, timeout=5) as c:
        c.send(f"POST /e HTTP/1.1\r\nHost: {host}:{gw.port}\r\nContent-Length: 5\r\n"
               "Expect: 100-continue\r\n\r\n")
        st, _, _, raw = c.read_head()
        assert st == status, raw
    assert origin.received() == b""


def test_unknown_host_404_nothing_forwarded(gw, origin):
    r = curl(gw.url("nobody.localhost", "/x"))
    assert r.status == 404, r
    r = get(gw.port, "/x", host="rec.localhost.evil")
    assert r.status == 404, r
    r = get(gw.port, "/x", host="xrec.localhost")
    assert r.status == 404, r
    assert origin.received() == b""


def test_forwarding_headers_replaced_and_sensitive_stripped(gw, origin):
    hdrs = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("Cf-Access-Authenticated-User-Email", "ceo@example.com"),
        ("cf-access-jwt-assertion", "forged.jwt.value"),
        ("CF_ACCESS_JWT_ASSERTION", "forged2"),
        ("Cf_Access_Authenticated_User_Email", "ceo2@example.com"),
        ("cf-access-token", "tok-should-not-pass"),
        ("CF-Access-Client-Id", "id.access"),
        ("CF-Access-Client-Secret", "sec-should-not-pass"),
        ("Cookie", "CF_Authorization=cookie-should-not-pass; theme=dark"),
        ("Authorization", "Bearer api-key-passes"),
        ("X-Custom", "kept"),
    ]
    r = get(gw.port, "/h", host="rec.localhost", headers=hdrs)
    assert r.status == 200, r
    got = origin.requests[-1]
    names = [k.lower() for k, _ in got["headers"]]
    h = got["hmap"]
    assert h["x-forwarded-for"] == "127.0.0.1", h
    assert names.count("x-forwarded-for") == 1
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == f"rec.localhost:{gw.port}"
    for n in names:
        assert not n.replace("_", "-").startswith("cf-access-"), f"forwarded {n}: {got['headers']}"
    raw = origin.received()
    for secret in (b"forged", b"ceo@", b"ceo2@", b"tok-should-not-pass", b"sec-should-not-pass",
                   b"cookie-should-not-pass", b"id.access"):
        assert secret not in raw, secret
    assert h["authorization"] == "Bearer api-key-passes"
    assert h["x-custom"] == "kept"
    assert "theme=dark" in h.get("cookie", ""), "other cookies must pass"
    assert HEX_RE.match(h["x-request-id"]), h


def test_request_ids_distinct(gw, origin):
    for i in range(5):
        assert get(gw.port, f"/{i}", host="rec.localhost").status == 200
    ids = [r["hmap"]["x-request-id"] for r in origin.requests]
    assert len(set(ids)) == 5 and all(HEX_RE.match(i) for i in ids), ids


def test_hop_by_hop_removed(gw, origin):
    with RawConn(gw.port) as c:
        c.send(f"GET /hop HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n"
               "Connection: keep-alive, X-Hop-Secret\r\nX-Hop-Secret: 1\r\n"
               "Keep-Alive: timeout=99\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
               "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-End: 1\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    h = origin.requests[-1]["hmap"]
    for n in ("x-hop-secret", "keep-alive", "proxy-connection", "proxy-authorization"):
        assert n not in h, (n, h)
    assert "te" not in h or h["te"].lower() == "trailers"
    assert h["x-end"] == "1"


def test_request_line_too_long_414(gw, origin):
    with RawConn(gw.port) as c:
        c.send(f"GET /{'a' * 9000} HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n\r\n")
        r = c.read_response()
    assert r.status == 414, r
    assert origin.received() == b""


def test_request_line_just_under_limit_ok(gw):
    path = "/" + "b" * 8000
    r = get(gw.port, path)
    assert r.status == 200, r
    assert r.json()["path"] == path


def test_too_many_headers_431(gw, origin):
    hs = "".join(f"X-H{i}: v\r\n" for i in range(101))
    with RawConn(gw.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n{hs}\r\n")
        r = c.read_response()
    assert r.status == 431, r
    assert origin.received() == b""


@pytest.mark.parametrize("host", ["pub.localhost", "rec.localhost"])
def test_hundred_headers_ok(gw, origin, host):
    """100 headers is within the limit, whatever the gateway then adds (X-Forwarded-*, ...)."""
    hs = [(f"X-H{i}", "v") for i in range(98)]  # + Host + Connection = 100
    r = get(gw.port, "/", host=host, headers=hs)
    assert r.status == 200, r


def test_headers_too_big_431(gw, origin):
    hs = "".join(f"X-Big{i}: {'v' * 1000}\r\n" for i in range(17))
    with RawConn(gw.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n{hs}\r\n")
        r = c.read_response()
    assert r.status == 431, r
    assert origin.received() == b""


@pytest.mark.parametrize("host", ["pub.localhost", "rec.localhost"])
def test_headers_15k_ok(gw, origin, host):
    hs = [(f"X-Big{i}", "v" * 1000) for i in range(15)]
    r = get(gw.port, "/", host=host, headers=hs)
    assert r.status == 200, r


def test_head_request(gw, origin):
    """A HEAD response has no body: the next response on the connection parses cleanly."""
    with RawConn(gw.port) as c:
        for host in ("pub.localhost", "rec.localhost"):
            c.send(f"HEAD /h HTTP/1.1\r\nHost: {host}:{gw.port}\r\n\r\n"
                   f"GET /after-head HTTP/1.1\r\nHost: {host}:{gw.port}\r\n\r\n")
            r = c.read_response(head_request=True)
            assert r.status == 200, r
            r = c.read_response()
            assert r.status == 200, r
            assert r.body.startswith(b"{") and b"/after-head" in r.body, r
    r = curl(gw.url("pub.localhost", "/h"), "-I")
    assert r.rc == 0 and r.status == 200, r


def test_absolute_form_authority_wins(gw, origin):
    with RawConn(gw.port) as c:
        c.send(f"GET http://rec.localhost:{gw.port}/abs?q=1 HTTP/1.1\r\n"
               f"Host: closed.localhost:{gw.port}\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    got = origin.requests[-1]
    assert got["target"] == "/abs?q=1"
    assert got["hmap"]["host"] == f"rec.localhost:{gw.port}", got["hmap"]
    # and the other way round: the Host names the open app, the authority the blocked one
    with RawConn(gw.port) as c:
        c.send(f"GET http://closed.localhost:{gw.port}/abs HTTP/1.1\r\n"
               f"Host: rec.localhost:{gw.port}\r\n\r\n")
        r = c.read_response()
    assert r.status == 403, r
    assert len(origin.requests) == 1


def test_host_case_and_trailing_dot(gw):
    r = get(gw.port, "/", host=f"PUB.LocalHost.:{gw.port}")
    assert r.status == 200, r


def test_many_concurrent_connections(gw):
    import concurrent.futures as cf

    def one(i):
        r = get(gw.port, f"/c/{i}")
        return r.status, r.json()["path"]

    with cf.ThreadPoolExecutor(32) as ex:
        res = list(ex.map(one, range(200)))
    assert res == [(200, f"/c/{i}") for i in range(200)]


@pytest.mark.parametrize("workers", [1, 3])
def test_worker_threads(latchd, workers):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])], "workers": workers})
    assert get(d.port, "/").status == 200
    with open(f"/proc/{d.pid}/status") as f:
        threads = int(next(l for l in f if l.startswith("Threads:")).split()[1])
    assert threads >= workers, f"{threads} threads for workers: {workers}"


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_origin_response_framings(latchd, origin_factory, framing):
    """Chunked and close-delimited origin responses reach the client whole, and the client
    connection stays usable (re-framed) or is closed cleanly after the body."""
    o = origin_factory(framing=framing)
    d = latchd({"apps": [bypass_app("rec", ["rec.localhost"], origin=o.url)]})
    with RawConn(d.port) as c:
        for i in range(3):
            c.send(f"GET /f/{i} HTTP/1.1\r\nHost: rec.localhost:{d.port}\r\n\r\n")
            try:
                r = c.read_response()
            except EOFError:
                assert framing == "close" and i > 0
                break
            assert r.status == 200, r
            assert r.json()["target"] == f"/f/{i}"
            if c.eof:
                break


def test_origin_connections_reused(gw, origin):
    """Keep-alive on the origin side too (SPEC.md §8)."""
    with RawConn(gw.port) as c:
        for i in range(20):
            c.send(f"GET /reuse/{i} HTTP/1.1\r\nHost: rec.localhost:{gw.port}\r\n\r\n")
            assert c.read_response().status == 200
    assert len(origin.requests) == 20
    assert origin.connections <= 5, f"{origin.connections} origin connections for 20 requests"
