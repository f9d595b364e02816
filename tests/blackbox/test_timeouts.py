"""Origin failures and client timeouts (SPEC.md §8, docs/config-extras.md): 502 when the origin
refuses or talks nonsense, 504 when it is silent past timeouts.origin_response (or does not
accept within origin_connect), 408 + close for a slow request head while other clients are
still served, idle keep-alive connections closed."""

import select
import socket
import threading
import time

import pytest

from harness import RawConn, bypass_app, curl, free_port, get


def test_origin_refuses_connection_502(latchd):
    dead = free_port()  # nothing listens there
    d = latchd({"apps": [bypass_app("down", ["down.localhost"], origin=f"http://127.0.0.1:{dead}")]})
    t0 = time.monotonic()
    r = get(d.port, "/", host="down.localhost")
    assert r.status == 502, r
    assert time.monotonic() - t0 < 5
    e = d.wait_log(lambda e: e.get("status") == 502)
    assert e["app"] == "down"


def test_origin_closes_without_answer_502(latchd, origin_factory):
    o = origin_factory(mode="close")
    d = latchd({"apps": [bypass_app("x", ["x.localhost"], origin=o.url)]})
    r = get(d.port, "/", host="x.localhost")
    assert r.status == 502, r


def test_origin_garbage_502(latchd, origin_factory):
    o = origin_factory(mode="garbage")
    d = latchd({"apps": [bypass_app("x", ["x.localhost"], origin=o.url)]})
    r = get(d.port, "/", host="x.localhost")
    assert r.status == 502, r


def test_origin_silent_504(latchd, origin_factory):
    o = origin_factory(mode="silent")
    d = latchd({"apps": [bypass_app("silent", ["silent.localhost"], origin=o.url),
                         bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"origin_response": "1s"}})
    t0 = time.monotonic()
    r = get(d.port, "/", host="silent.localhost", timeout=10)
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert 0.8 <= took < 4, took
    assert o.requests, "the request should have reached the silent origin"
    # the gateway is fine afterwards
    assert get(d.port, "/", host="pub.localhost").status == 200


def test_origin_connect_timeout_504(latchd):
    """An origin whose accept queue is full: SYNs are dropped, connect() never completes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue (and the SYN backlog of size ~1)
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(1.5)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel completes connections to a full accept queue; "
                        "cannot simulate a connect timeout here")
        except (socket.timeout, OSError):
            pass
        finally:
            probe.close()
        d = latchd({"apps": [bypass_app("slow", ["slow.localhost"],
                                        origin=f"http://127.0.0.1:{port}")],
                    "timeouts": {"origin_connect": "1s", "origin_response": "30s"}})
        t0 = time.monotonic()
        r = get(d.port, "/", host="slow.localhost", timeout=15)
        took = time.monotonic() - t0
        assert r.status == 504, r
        assert took < 5, took
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_slow_header_client_cut_off_others_served(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"header": "2s", "idle": "30s"}})
    results = {}

    def slowloris(i):
        c = RawConn(d.port, timeout=10)
        t0 = time.monotonic()
        data = f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\nX-Slow: ".encode()
        data += b"a" * 100
        status = None
        try:
            for b in data:  # one byte every 250 ms: always "making progress"
                c.send(bytes([b]))
                readable, _, _ = select.select([c.sock], [], [], 0.25)
                if readable or time.monotonic() - t0 > 8:
                    break  # the gateway answered (or closed): stop sending, read it
        except OSError:
            pass
        try:
            c.sock.settimeout(3)
            r = c.read_response()
            status = r.status
        except (OSError, EOFError):
            pass
        closed = c.closed_within(3)
        results[i] = (status, closed, time.monotonic() - t0)
        c.close()

    threads = [threading.Thread(target=slowloris, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # meanwhile, ordinary clients are served promptly
    for i in range(10):
        t0 = time.monotonic()
        r = get(d.port, f"/fast/{i}")
        assert r.status == 200
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.1)
    for t in threads:
        t.join(20)
    assert len(results) == 20
    for i, (status, closed, took) in results.items():
        assert closed, f"slow client {i} never cut off"
        assert status == 408, f"slow client {i}: status {status}"
        assert took < 5.5, f"slow client {i} cut off only after {took:.1f}s"


def test_silent_new_connection_closed(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"header": "2s", "idle": "2s"}})
    with RawConn(d.port) as c:
        t0 = time.monotonic()
        assert c.closed_within(6), "a connection that sends nothing is never closed"
        assert time.monotonic() - t0 > 1.5


def test_idle_keepalive_closed(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"header": "10s", "idle": "2s"}})
    with RawConn(d.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert not c.closed_within(1.2), "closed before the idle timeout"
        assert c.closed_within(4), "idle keep-alive connection not closed"
        assert time.monotonic() - t0 < 5


def test_header_timeout_counts_whole_head_not_gaps(latchd):
    """A head that arrives in pieces but completes in time is served."""
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])], "timeouts": {"header": "3s"}})
    with RawConn(d.port) as c:
        for part in (b"GET /pieces HTTP/1.1\r\n", f"Host: pub.localhost:{d.port}\r\n".encode(),
                     b"X-A: 1\r\n", b"\r\n"):
            c.send(part)
            time.sleep(0.3)
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/pieces"


@pytest.mark.parametrize("host", ["pub.localhost", "rec.localhost"])
def test_client_stalls_in_body(latchd, origin, host):
    """timeouts.client: a client that stops sending its body is cut off (echo and real origin)."""
    d = latchd({"apps": [bypass_app("rec", ["rec.localhost"], origin=origin.url),
                         bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"client": "2s"}})
    with RawConn(d.port) as c:
        c.send(f"POST /stall HTTP/1.1\r\nHost: {host}:{d.port}\r\n"
               "Content-Length: 100\r\n\r\nonly-part")
        t0 = time.monotonic()
        assert c.closed_within(6), "a client stalled in its body is never cut off"
        assert time.monotonic() - t0 < 5
    assert "/stall" not in origin.paths(), "an incomplete body must not complete at the origin"
    assert get(d.port, "/", host="pub.localhost").status == 200
