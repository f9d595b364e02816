"""The origin connection pool (issue 10, finding 4): a pooled connection is reused only when it is
provably clean. An origin that writes more than its response (a second response nobody asked
for, garbage), or closes, while the gateway still relays to a slow client or while the
connection sits in the pool, must never have those bytes read as the answer to the next request
on that connection: another user's, another app's (the pool is keyed by origin, not by app).
One worker, so that every request meets the same pool. Each case is arranged so that it fails on
every run without the check (see each test), and the victim must get its own answer."""

import os
import signal
import socket
import ssl
import threading
import time

import pytest

from harness import Origin, RawConn, bypass_app
from test_tls import make_cert

EXTRA_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Poison: 1\r\n\r\nPOISONED"
EXTRA_GARBAGE = b"these bytes are nobody's answer\r\n\r\n"
FILL_BODY = 4096


class BadOrigin(Origin):
    """An HTTP/1.1 origin (keep-alive, one thread per connection, optionally TLS) whose answers
    name the request they answer; some paths misbehave after their response:
      /fill/N     a 4 KiB body (pipelined fillers)
      /poison     a 30000-byte body, then after `delay` the extra bytes
      /exact      once `go` is set: a response of exactly 32768 bytes and the extra bytes in
                  the same write
      /later      a normal answer, then the extra bytes once `go` is set
      /fin-later  a normal answer, then close once `go` is set
      anything else: "answer for METHOD PATH" """

    def __init__(self, extra=EXTRA_RESPONSE, delay=0.3, tls=None):
        self.extra, self.delay, self.tls = extra, delay, tls
        self.go = threading.Event()
        self.got = threading.Event()  # a request for /exact arrived
        super().__init__()  # the listening socket and its accept thread, calling _serve
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def _serve(self, c):
        c.settimeout(30)
        try:
            if self.tls:
                c = self.tls.wrap_socket(c, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                hmap = {k.strip().lower(): v.strip()
                        for k, _, v in (ln.partition(":") for ln in lines[1:])}
                n = int(hmap.get("content-length", "0"))
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[n:]
                if not self._answer(c, method, target):
                    return
        except (OSError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def _response(body):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    def _answer(self, c, method, target):
        """Sends the answer; False when the connection is to end."""
        if target.startswith("/fill/"):
            c.sendall(self._response(f"fill {target}".encode().ljust(FILL_BODY, b".")))
        elif target == "/poison":
            c.sendall(self._response(b"poison response ".ljust(30000, b"p")))
            time.sleep(self.delay)
            c.sendall(self.extra)
        elif target == "/exact":
            self.got.set()
            if not self.go.wait(20):
                return False
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %05d\r\n\r\n" % 0
            body = b"e" * (32768 - len(head))
            c.sendall(self._response(body) + self.extra)
        elif target in ("/later", "/fin-later"):
            c.sendall(self._response(f"answer for {method} {target}".encode()))
            if not self.go.wait(20):
                return False
            if target == "/fin-later":
                return False
            c.sendall(self.extra)
        else:
            c.sendall(self._response(f"answer for {method} {target}".encode()))
        return True



@pytest.fixture(scope="module")
def origin_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("origin-cert")
    crt, key, _ = make_cert(d, "origin.localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


@pytest.fixture
def bad_origin(request, origin_cert):
    kw = dict(getattr(request, "param", {}) or {})
    if kw.pop("tls", False):
        kw["tls"] = origin_cert
    o = BadOrigin(**kw)
    yield o
    o.close()


def gateway(latchd, o):
    """Two apps on the one origin, one worker: app a's connections are app b's pool."""
    apps = [bypass_app("a", ["a.localhost"], origin=o.url),
            bypass_app("b", ["b.localhost"], origin=o.url)]
    if o.tls:
        for a in apps:
            a["origin_tls"] = {"verify": False}
    return latchd({"workers": 1, "apps": apps})


def request(host, port, path, method="GET", body=b""):
    extra = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n").encode() + body


def assert_own_answers(port, n=6):
    """Another client (app b) gets its own answer, every time: nothing left over from before."""
    with RawConn(port, timeout=10) as c:
        for i in range(n):
            c.send(request("b.localhost", port, f"/victim/{i}"))
            r = c.read_response()
            assert r.header("x-poison") is None and b"POISONED" not in r.body, r
            assert r.status == 200 and r.body == f"answer for GET /victim/{i}".encode(), r


def slow_client(port, mss=88, rcvbuf=1024):
    """A client whose window is tiny: the gateway's writes to it block after a few tens of KiB."""
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def stall_capacity(mss=88, rcvbuf=1024):
    """How many bytes a server can write to such a client that reads nothing, before its writes
    block (its send buffer as the kernel sizes it, plus the client's receive buffer)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    c = slow_client(ls.getsockname()[1], mss, rcvbuf)
    s, _ = ls.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    total, idle = 0, 0
    try:
        while idle < 10:
            try:
                total += s.send(b"x" * 4096)
                idle = 0
            except BlockingIOError:
                idle += 1
                time.sleep(0.02)
    finally:
        for x in (s, c, ls):
            x.close()
    return total


@pytest.mark.parametrize("bad_origin", [{}, {"extra": EXTRA_GARBAGE}, {"tls": True}],
                         ids=["second-response", "garbage", "tls-origin"], indirect=True)
def test_extra_bytes_while_relaying_to_slow_client(latchd, bad_origin):
    """The review's case. A slow client pipelines fillers and then /poison on one connection,
    reading nothing: the fillers fill its window, so the gateway has read the whole /poison
    response but is still writing it when the origin sends its extra bytes (an edge already
    seen, so no new event). Without the check the connection went back to the pool with them
    unread, and the next request on it, from another client and app, got them as its answer."""
    d = gateway(latchd, bad_origin)
    room = stall_capacity()
    head = 60  # about what the gateway's response head adds to each 4 KiB filler
    nfill = max(0, (room - 15000) // (FILL_BODY + head))
    s = slow_client(d.port)
    c = RawConn(d.port, sock=s, timeout=20)
    with c:
        c.send(b"".join(request("a.localhost", d.port, f"/fill/{i}") for i in range(nfill)) +
               request("a.localhost", d.port, "/poison"))
        time.sleep(bad_origin.delay + 1.0)  # the extra bytes arrive while the client stalls
        for i in range(nfill):
            r = c.read_response()
            assert r.status == 200 and r.body.startswith(f"fill /fill/{i}".encode()), r
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"poison response"), r
    assert_own_answers(d.port)


@pytest.mark.parametrize("bad_origin", [{}, {"tls": True}], ids=["plain", "tls-origin"],
                         indirect=True)
def test_extra_bytes_behind_a_response_that_fills_the_buffer(latchd, bad_origin):
    """A response of exactly the gateway's buffer size and the extra bytes in the same write:
    the read that fills the buffer ends the response and leaves them in the kernel (or in TLS),
    with the edge consumed. The daemon is stopped while they arrive, so that they are all there
    for that one read."""
    d = gateway(latchd, bad_origin)
    with RawConn(d.port, timeout=10) as c:
        c.send(request("a.localhost", d.port, "/exact"))
        assert bad_origin.got.wait(10)
        with stopped(d):
            bad_origin.go.set()
            time.sleep(0.3)
        r = c.read_response()
        assert r.status == 200 and len(r.body) > 32000 and set(r.body) == {ord("e")}, r
    assert_own_answers(d.port)


class stopped:
    """Holds latchd stopped (SIGSTOP, by its pid) for the block, then lets it go (SIGCONT):
    what arrives meanwhile is there all at once when it wakes."""

    def __init__(self, d):
        self.pid = d.pid

    def _is_stopped(self):
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not self._is_stopped():
            assert time.monotonic() < deadline, "latchd did not stop"
            time.sleep(0.01)

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


@pytest.mark.parametrize("path,method", [("/later", "GET"), ("/fin-later", "POST")],
                         ids=["extra-bytes", "origin-closed"])
@pytest.mark.parametrize("bad_origin", [{}, {"tls": True}], ids=["plain", "tls-origin"],
                         indirect=True)
def test_bytes_or_close_while_pooled_with_a_request_queued_first(latchd, bad_origin, path, method):
    """While the connection is pooled the origin writes (or closes), and the event saying so is
    queued behind another client's request in the same epoll batch (the daemon is stopped while
    both arrive, the request first). Reuse must look at the socket itself, not wait for that
    event. A POST is not retried on a fresh connection: without the check it got a 502 after the
    origin's close, or the extra bytes as its answer."""
    d = gateway(latchd, bad_origin)
    with RawConn(d.port, timeout=10) as victim, RawConn(d.port, timeout=10) as other:
        victim.send(request("b.localhost", d.port, "/warm"))
        assert victim.read_response().body == b"answer for GET /warm"
        other.send(request("a.localhost", d.port, path))
        assert other.read_response().body == f"answer for GET {path}".encode()
        conns = bad_origin.connections
        with stopped(d):
            victim.send(request("b.localhost", d.port, "/victim", method, b"x" * 5))
            time.sleep(0.2)
            bad_origin.go.set()
            time.sleep(0.3)
        r = victim.read_response()
        assert r.status == 200 and r.body == f"answer for {method} /victim".encode(), r
        assert bad_origin.connections == conns + 1, "the request went on a fresh connection"
    assert_own_answers(d.port)


@pytest.mark.parametrize("bad_origin", [{}, {"tls": True}], ids=["plain", "tls-origin"],
                         indirect=True)
def test_clean_connections_are_still_reused(latchd, bad_origin):
    """The check costs no reuse: an origin that writes nothing extra keeps one connection for
    every request, from any client and app (TLS included, where readiness is always set)."""
    d = gateway(latchd, bad_origin)
    for i in range(6):
        host = "a.localhost" if i % 2 else "b.localhost"
        with RawConn(d.port, timeout=10) as c:
            c.send(request(host, d.port, f"/plain/{i}"))
            r = c.read_response()
            assert r.status == 200 and r.body == f"answer for GET /plain/{i}".encode(), r
    assert bad_origin.connections == 1, f"{bad_origin.connections} origin connections for 6 requests"
