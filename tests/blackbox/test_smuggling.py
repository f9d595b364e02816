"""Request smuggling and path-bypass corpora (SPEC.md §4, §8): every framing two parsers could
read differently is refused with 400 and the connection closed, and NOTHING of it reaches the
origin (a recording origin sees every byte latchd sends it). Each case is followed by a second,
"smuggled" request on the same connection that must never reach the origin either."""

import time

import pytest

from harness import Origin, RawConn, bypass_app, finish_shared, start_shared

SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: {h}\r\n\r\n"

# Errors in the request head: the origin must receive no byte at all.
HEAD_CASES = {
    "cl+te": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
    "te+cl": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX",
    "cl-differ": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloX",
    "cl-list-differ": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5, 6\r\n\r\nhelloX",
    "cl-plus": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: +5\r\n\r\nhello",
    "cl-negative": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: -1\r\n\r\n",
    "cl-hex": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 0x5\r\n\r\nhello",
    "cl-trailing-alpha": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5a\r\n\r\nhello",
    "cl-empty": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: \r\n\r\n",
    "cl-inner-space": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 1 0\r\n\r\nhelloworld",
    "cl-overflow": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "cl-space-before-colon": "POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length : 5\r\n\r\nhello",
    "te-identity": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: identity\r\n\r\n",
    "te-chunked-identity": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te-gzip": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te-chunked-twice-list": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "te-two-headers": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-xchunked": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-quoted": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n",
    "te-obs-fold": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-vtab": "POST / HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    "te-in-http10": "POST / HTTP/1.0\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": "GET / HTTP/1.1\r\nHost: {h}\r\nX-Foo: a\r\n b\r\n\r\n",
    "obs-fold-tab": "GET / HTTP/1.1\r\nHost: {h}\r\nX-Foo: a\r\n\tb\r\n\r\n",
    "first-header-indented": "GET / HTTP/1.1\r\n Host: {h}\r\n\r\n",
    "bare-lf-request-line": "GET / HTTP/1.1\nHost: {h}\r\n\r\n",
    "bare-lf-everywhere": "GET / HTTP/1.1\nHost: {h}\n\n",
    "bare-lf-header": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A: 1\nX-B: 2\r\n\r\n",
    "bare-cr-header": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A: 1\rX-B: 2\r\n\r\n",
    "bare-cr-request-line": "GET / HTTP/1.1\rHost: {h}\r\n\r\n",
    "nul-in-value": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\x00b\r\n\r\n",
    "ctl-in-value": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\x01b\r\n\r\n",
    "del-in-value": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\x7fb\r\n\r\n",
    "del-in-name": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A\x7f: b\r\n\r\n",
    "space-in-name": "GET / HTTP/1.1\r\nHost: {h}\r\nX A: b\r\n\r\n",
    "space-before-colon": "GET / HTTP/1.1\r\nHost: {h}\r\nX-A : b\r\n\r\n",
    "no-colon": "GET / HTTP/1.1\r\nHost: {h}\r\nX-NoColon\r\n\r\n",
    "empty-name": "GET / HTTP/1.1\r\nHost: {h}\r\n: b\r\n\r\n",
    "missing-host": "GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two-hosts": "GET / HTTP/1.1\r\nHost: {h}\r\nHost: other.localhost\r\n\r\n",
    "host-userinfo": "GET / HTTP/1.1\r\nHost: evil@{h}\r\n\r\n",
    "host-space": "GET / HTTP/1.1\r\nHost: rec.localhost evil\r\n\r\n",
    "rl-double-space": "GET  / HTTP/1.1\r\nHost: {h}\r\n\r\n",
    "rl-trailing-space": "GET / HTTP/1.1 \r\nHost: {h}\r\n\r\n",
    "rl-tab": "GET\t/ HTTP/1.1\r\nHost: {h}\r\n\r\n",
    "rl-lowercase-version": "GET / http/1.1\r\nHost: {h}\r\n\r\n",
    "rl-no-version": "GET /\r\nHost: {h}\r\n\r\n",
    "rl-relative-target": "GET index.html HTTP/1.1\r\nHost: {h}\r\n\r\n",
    "rl-ctl-in-method": "G\x01T / HTTP/1.1\r\nHost: {h}\r\n\r\n",
}

# Errors in a chunked body: the malformed framing and the smuggled request never reach the
# origin (latchd may have forwarded the head already; the origin then sees an aborted request).
BODY_CASES = {
    # request trailers are refused: an origin merging them into the header section would take
    # an identity header from the client there
    "trailer-identity": "5\r\nhello\r\n0\r\nCf-Access-Authenticated-User-Email: boss@example.com\r\n\r\n",
    "trailer-xff": "5\r\nhello\r\n0\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    "chunk-size-nonhex": "zz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": "-5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-0x": "0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-leading-space": " 5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": "10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk-size-empty": "\r\nhello\r\n0\r\n\r\n",
    "chunk-size-bare-lf": "5\nhello\r\n0\r\n\r\n",
    "chunk-data-bare-lf": "5\r\nhello\n0\r\n\r\n",
    "chunk-data-too-long": "3\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-ctl": "5;a\x01b\r\nhello\r\n0\r\n\r\n",
    "last-chunk-bare-lf": "5\r\nhello\r\n0\n\n",
    "trailer-no-colon": "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
    "trailer-obs-fold": "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n",
}

# Path spellings refused with 400 (SPEC.md §4).
PATH_CASES = {
    "enc-slash-upper": "/a%2Fb",
    "enc-slash-lower": "/a%2fb",
    "enc-slash-dotdot": "/x/..%2F..%2Fetc/passwd",
    "backslash": "/a\\b",
    "backslash-dotdot": "/x/..\\admin",
    "enc-backslash": "/a%5Cb",
    "enc-backslash-lower": "/a%5cb",
    "enc-nul": "/a%00b",
    "raw-nul": "/a\x00b",
    "raw-hash": "/a#b",
    "raw-hash-fragment": "/admin/x#frag",
    "raw-ctl": "/a\x01b",
    "raw-del": "/a\x7fb",
    "raw-esc": "/a\x1bb",
    "malformed-escape": "/a%zzb",
    "truncated-escape": "/a%4",
}


@pytest.fixture(scope="module")
def env(module_tmp):
    o = Origin()
    d = start_shared(module_tmp / "gw", {
        "apps": [bypass_app("rec", ["rec.localhost"], origin=o.url)],
        "timeouts": {"header": "3s", "client": "3s"},
    })
    yield d, o
    o.close()
    finish_shared(d)


def expect_400_and_close(d, payload, o):
    """Sends payload on a fresh connection; returns the response; asserts 400 and close."""
    with RawConn(d.port, timeout=5) as c:
        c.send(payload)
        try:
            r = c.read_response()
        except (EOFError, OSError) as e:
            pytest.fail(f"no response before close ({e}); expected 400")
        assert r.status == 400, f"expected 400, got {r.status}: {r.raw_head!r}"
        assert c.closed_within(3), "connection not closed after a 400"
    return r


def test_sanity_valid_request_reaches_origin(env):
    d, o = env
    with RawConn(d.port) as c:
        c.send(f"GET /sane HTTP/1.1\r\nHost: rec.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 200
    assert "/sane" in o.paths()


@pytest.mark.parametrize("name", list(HEAD_CASES))
def test_head_framing_refused(env, name):
    d, o = env
    h = f"rec.localhost:{d.port}"
    before = o.total
    payload = HEAD_CASES[name].format(h=h) + SMUGGLED.format(h=h)
    expect_400_and_close(d, payload.encode("latin-1"), o)
    time.sleep(0.2)
    assert o.total == before, f"origin received bytes: {o.received()[-500:]!r}"
    assert "/smuggled" not in o.paths()


@pytest.mark.parametrize("name", list(BODY_CASES))
def test_chunked_framing_refused(env, name):
    d, o = env
    h = f"rec.localhost:{d.port}"
    before_raw = len(o.received())
    before_reqs = len(o.requests)
    payload = (f"POST /body-{name} HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n"
               + BODY_CASES[name] + SMUGGLED.format(h=h))
    expect_400_and_close(d, payload.encode("latin-1"), o)
    time.sleep(0.2)
    got = o.received()[before_raw:]
    assert len(o.requests) == before_reqs, f"origin got a complete request: {o.requests[-1]}"
    assert b"smuggled" not in got
    bad = BODY_CASES[name].encode("latin-1")
    assert bad not in got, f"malformed framing forwarded: {got[-300:]!r}"


@pytest.mark.parametrize("name", list(PATH_CASES))
def test_path_refused(env, name):
    d, o = env
    h = f"rec.localhost:{d.port}"
    before = o.total
    payload = f"GET {PATH_CASES[name]} HTTP/1.1\r\nHost: {h}\r\n\r\n" + SMUGGLED.format(h=h)
    expect_400_and_close(d, payload.encode("latin-1"), o)
    time.sleep(0.2)
    assert o.total == before, f"origin received bytes: {o.received()[-500:]!r}"


def test_daemon_still_serves_after_corpus(env):
    d, o = env
    with RawConn(d.port) as c:
        c.send(f"GET /after HTTP/1.1\r\nHost: rec.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 200
    assert o.paths()[-1] == "/after"
