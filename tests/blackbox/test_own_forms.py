"""The request body of the gateway's own endpoints (a form, SPEC.md §6): read whole before the
endpoint runs, however the client sends it; a pipelined request after it is the next one; a
chunked form gets 411 and one over 64 KiB 413, both closing; a form that stops midway is closed
at timeouts.client and the gateway goes on serving. The endpoint is the handoff's POST token,
whose answer depends on the body: 400 without `host`, 401 for a bad org token with one."""

import time

from harness import RawConn, bypass_app

BODY = b"host=pub.localhost&path=%2F"


def gateway(latchd, **extra):
    return latchd({"apps": [bypass_app("pub", ["pub.localhost"])], **extra})


def token_head(d, length, more=""):
    return (f"POST /cdn-cgi/access/token HTTP/1.1\r\nHost: auth.localhost:{d.port}\r\n"
            f"cf-access-token: not-a-token\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"{more}Content-Length: {length}\r\n\r\n").encode()


def test_form_read_whole_when_sent_in_pieces(latchd):
    d = gateway(latchd)
    with RawConn(d.port) as c:
        c.send(token_head(d, len(BODY)))
        for i in range(0, len(BODY), 5):  # the endpoint must not run on a part of it
            time.sleep(0.05)
            c.send(BODY[i:i + 5])
        r = c.read_response()
        assert r.status == 401, r
        assert r.json()["error"] == "login_required", r
        # the connection carries on: the next request on it is answered
        c.send(f"GET /cdn-cgi/access/token HTTP/1.1\r\nHost: auth.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 404
    with RawConn(d.port) as c:  # the answer depends on the body: without host, 400
        c.send(token_head(d, 6) + b"path=/")
        r = c.read_response()
        assert r.status == 400, r


def test_form_then_pipelined_request(latchd):
    """A request sent right after the form, in the same write, is the next request, not more
    of the form."""
    d = gateway(latchd)
    with RawConn(d.port) as c:
        c.send(token_head(d, len(BODY)) + BODY +
               b"GET /hello HTTP/1.1\r\nHost: pub.localhost\r\n\r\n")
        assert c.read_response().status == 401
        r = c.read_response()
        assert r.status == 200, r


def test_chunked_form_411_and_large_form_413(latchd):
    d = gateway(latchd)
    with RawConn(d.port) as c:
        c.send(token_head(d, 0).replace(b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n") +
               b"5\r\nhost=\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 411, r
        assert r.header("connection").lower() == "close"
        assert c.closed_within(10)
    with RawConn(d.port) as c:
        c.send(token_head(d, 64 * 1024 + 1) + b"host=")
        r = c.read_response()
        assert r.status == 413, r
        assert r.header("connection").lower() == "close"
        assert c.closed_within(10)


def test_stalled_form_closed_at_client_timeout(latchd):
    d = gateway(latchd, timeouts={"client": "1s"})
    with RawConn(d.port) as c:
        c.send(token_head(d, len(BODY)) + BODY[:4])
        assert c.closed_within(15), "a form that stops midway is not kept open"
    with RawConn(d.port) as c:  # and the gateway goes on serving
        c.send(b"GET / HTTP/1.1\r\nHost: pub.localhost\r\n\r\n")
        assert c.read_response().status == 200
