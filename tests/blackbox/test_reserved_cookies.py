"""The gateway's cookies are the gateway's (issue 10): an origin never receives them in the
forwarded Cookie header, and an origin's Set-Cookie for one of their names never reaches the
browser, whatever the case or prefix: CF_Authorization, __Host-/__Secure-CF_Authorization, and
every latch_*, __Host-latch_*, __Secure-latch_* (login flow, binding). Otherwise an origin (or
whoever controls one app) could plant a session or a login binding on the app host, or read one."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import RawConn, bypass_app

RESERVED = [
    "CF_Authorization", "cf_authorization", "__Host-CF_Authorization", "__Secure-CF_Authorization",
    "latch_flow", "latch_bind_3", "LATCH_bind_a", "__Host-latch_flow", "__host-latch_bind_0",
    "__Secure-latch_bind_f",
]
THEIRS = ["session", "latchkey", "__Host-app", "cf_clearance", "CF_Authorization2"]


class CookieOrigin(ThreadingHTTPServer):
    """A real HTTP server (Python's) that records each request's Cookie headers and answers
    with one Set-Cookie per name in `sets` (and one without '=' for each bare name)."""

    daemon_threads = True

    def __init__(self, sets, bare=()):
        self.sets, self.bare, self.cookies = sets, bare, []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(h):
                self.cookies.append(h.headers.get_all("Cookie") or [])
                h.send_response(200)
                for name in self.sets:
                    h.send_header("Set-Cookie", f"{name}=from-origin; Path=/; HttpOnly")
                for name in self.bare:
                    h.send_header("Set-Cookie", f" {name} ; Path=/")
                h.send_header("Content-Length", "2")
                h.end_headers()
                h.wfile.write(b"ok")

            def log_message(h, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def cookie_origin():
    o = CookieOrigin(RESERVED + THEIRS, bare=["CF_Authorization", "latch_flow"])
    yield o
    o.shutdown()
    o.server_close()


def test_origin_cannot_set_the_gateways_cookies(latchd, cookie_origin):
    d = latchd({"apps": [bypass_app("app", ["app.localhost"], origin=cookie_origin.url)]})
    with RawConn(d.port, timeout=10) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: app.localhost:{d.port}\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    sets = [v for k, v in r.headers if k.lower() == "set-cookie"]
    names = [v.split("=", 1)[0].split(";", 1)[0].strip() for v in sets]
    assert sorted(names) == sorted(THEIRS), sets


def test_origin_never_receives_the_gateways_cookies(latchd, cookie_origin):
    d = latchd({"apps": [bypass_app("app", ["app.localhost"], origin=cookie_origin.url)]})
    sent = "; ".join(f"{n}=secret-{i}" for i, n in enumerate(RESERVED + THEIRS))
    with RawConn(d.port, timeout=10) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: app.localhost:{d.port}\r\nCookie: {sent}\r\n"
               f"Cookie: latch_flow=second; keep=1; CF_Authorization\r\n\r\n")
        assert c.read_response().status == 200
    got = "; ".join(cookie_origin.cookies[-1])
    pairs = [p.strip() for p in got.split(";") if p.strip()]
    names = [p.split("=", 1)[0].strip() for p in pairs]
    assert sorted(names) == sorted(THEIRS + ["keep"]), got
    assert "second" not in got, got
