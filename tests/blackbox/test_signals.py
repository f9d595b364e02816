"""Signals (SPEC.md §2, §9): SIGHUP reloads under traffic without a failed request and the new
config takes effect (also on connections opened before); a bad file is refused with its errors
on stderr and the old config keeps serving; SIGTERM drains (in-flight requests finish, new
connections are refused, exit 0); SIGUSR1 reopens log files after a rename."""

import http.client
import os
import re
import signal
import socket
import threading
import time

import pytest

from harness import RawConn, block_app, bypass_app, curl, get


def cfg(flip_open, extra_apps=()):
    flip = (bypass_app if flip_open else block_app)("flip", ["flip.localhost"])
    return {"apps": [bypass_app("pub", ["pub.localhost"]), flip, *extra_apps],
            "timeouts": {"idle": "30s"}}


def wait_status(d, host, status, timeout=5.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = get(d.port, "/", host=host).status
        if last == status:
            return True
        time.sleep(0.05)
    raise AssertionError(f"{host} still answers {last}, expected {status} after reload")


def test_reload_under_traffic(latchd):
    d = latchd(cfg(False))
    assert get(d.port, "/", host="flip.localhost").status == 403
    # a keep-alive connection opened before any reload
    early = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    early.request("GET", "/", headers={"Host": f"pub.localhost:{d.port}"})
    assert early.getresponse().read() and True

    stop = threading.Event()
    failures, counts = [], [0]
    lock = threading.Lock()

    def worker(keepalive):
        conn = None
        while not stop.is_set():
            try:
                if conn is None or not keepalive:
                    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
                conn.request("POST", "/load", body=b"x" * 1000,
                             headers={"Host": f"pub.localhost:{d.port}"})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or b'"body_bytes":1000' not in body.replace(b" ", b""):
                    with lock:
                        failures.append((r.status, body[:200]))
                if not keepalive:
                    conn.close()
            except Exception as e:  # any connection error is a dropped request
                with lock:
                    failures.append(repr(e))
                conn = None
            with lock:
                counts[0] += 1

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for i in range(6):
            d.reload(cfg(i % 2 == 0))
            time.sleep(0.4)
        d.reload(cfg(True))
        wait_status(d, "flip.localhost", 200)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert counts[0] > 50, f"only {counts[0]} requests made"
    assert not failures, f"{len(failures)} of {counts[0]} requests failed: {failures[:5]}"
    # the connection opened before the reloads sees the new config for its next request
    early.request("GET", "/", headers={"Host": f"flip.localhost:{d.port}"})
    r = early.getresponse()
    r.read()
    assert r.status == 200, "a connection opened before a reload must use the new config"
    early.close()
    assert d.alive()


def test_reload_adds_app(latchd):
    d = latchd(cfg(False))
    assert get(d.port, "/", host="new.localhost").status == 404
    d.reload(cfg(False, [bypass_app("new", ["new.localhost"])]))
    wait_status(d, "new.localhost", 200)


def test_bad_reload_keeps_old_config(latchd):
    d = latchd(cfg(False))
    good = d.config_path.read_text()
    bad = good.replace("decision: bypass", "decision: sometimes", 1)
    assert bad != good
    bad_line = next(i + 1 for i, l in enumerate(bad.splitlines()) if "sometimes" in l)
    # a keep-alive connection that must survive the bad reload
    with RawConn(d.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 200
        d.config_path.write_text(bad)
        d.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        rx = re.compile(re.escape(str(d.config_path)) + rf":{bad_line}:\d+: ")
        while not rx.search(d.stderr()):
            assert time.monotonic() < deadline, f"reload errors not logged:\n{d.stderr()}"
            time.sleep(0.05)
        assert d.alive()
        c.send(f"GET /again HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/again"
    assert get(d.port, "/", host="pub.localhost").status == 200
    assert get(d.port, "/", host="flip.localhost").status == 403
    # unparsable YAML too
    d.config_path.write_text("listen: [{address: \n  - broken")
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert d.alive()
    assert get(d.port, "/", host="pub.localhost").status == 200
    # and a good reload afterwards still works
    d.reload(cfg(True))
    wait_status(d, "flip.localhost", 200)


def test_sigterm_drains_in_flight(latchd, origin_factory):
    slow = origin_factory(delay=1.5)
    d = latchd({"apps": [bypass_app("slow", ["slow.localhost"], origin=slow.url),
                         bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"drain": "10s"}})
    results = {}

    def slow_request(i):
        with RawConn(d.port, timeout=10) as c:
            c.send(f"POST /slow/{i} HTTP/1.1\r\nHost: slow.localhost:{d.port}\r\n"
                   "Content-Length: 4\r\n\r\nbody")
            try:
                r = c.read_response()
                results[i] = (r.status, r.json()["target"], time.monotonic())
            except Exception as e:
                results[i] = (repr(e), None, time.monotonic())

    threads = [threading.Thread(target=slow_request, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(slow.requests) < 5:
        assert time.monotonic() < deadline, "slow requests did not reach the origin"
        time.sleep(0.02)
    # an idle keep-alive connection open at SIGTERM
    idle = RawConn(d.port, timeout=10)
    idle.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
    assert idle.read_response().status == 200

    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    # new connections are refused soon after SIGTERM, while the slow requests are in flight (a
    # SYN sent in the drain's first milliseconds is dropped, and refused when retransmitted 1 s
    # later: worker.c)
    refused_at = None
    while time.monotonic() - t_term < 1.0:
        try:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=3)
            s.close()
            time.sleep(0.02)
        except ConnectionRefusedError:
            refused_at = time.monotonic()
            break
    for t in threads:
        t.join(15)
    assert refused_at is not None, "new connections still accepted 1 s after SIGTERM"
    for i in range(5):
        st, target, done_at = results[i]
        assert st == 200, f"in-flight request {i} failed during drain: {st}"
        assert target == f"/slow/{i}"
        assert done_at > refused_at, "listener closed only after the in-flight requests ended"
    assert idle.closed_within(5), "idle keep-alive connection not closed by the drain"
    idle.close()
    try:
        rc = d.proc.wait(10)
    except Exception:
        rc = None
    d.stopped_by_test = True
    assert rc == 0, f"latchd exit status after drain: {rc}\n{d.stderr()[-2000:]}"


def test_sigterm_drain_gives_up_after_timeout(latchd, origin_factory):
    silent = origin_factory(mode="silent")
    d = latchd({"apps": [bypass_app("s", ["s.localhost"], origin=silent.url)],
                "timeouts": {"drain": "2s", "origin_response": "60s"}})
    c = RawConn(d.port, timeout=15)
    c.send(f"GET / HTTP/1.1\r\nHost: s.localhost:{d.port}\r\n\r\n")
    deadline = time.monotonic() + 5
    while not silent.requests:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    try:
        d.proc.wait(10)
    except Exception:
        pass
    d.stopped_by_test = True
    took = time.monotonic() - t0
    c.close()
    assert d.proc.returncode is not None, "latchd did not exit after timeouts.drain"
    assert took < 6, took


def test_sigusr1_reopens_logs(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])]})
    assert get(d.port, "/before").status == 200
    d.wait_log(lambda e: e.get("path") == "/before")
    rotated = d.requests_log.with_name("requests.log.1")
    os.rename(d.requests_log, rotated)
    d.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    # the new file appears when something is logged after the reopen
    while True:
        assert get(d.port, "/after").status == 200
        if d.requests_log.exists() and any(e.get("path") == "/after"
                                           for e in d.log_lines()):
            break
        assert time.monotonic() < deadline, "requests not logged to a new file after SIGUSR1"
        time.sleep(0.2)
    old = [e["path"] for e in d.log_lines(rotated)]
    assert "/before" in old
    assert d.alive()


def test_sigusr1_with_stdout_logging_is_harmless(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])],
                "log": {"requests": "stdout", "auth": "stdout"}})
    assert get(d.port, "/first").status == 200  # (signals at startup: a test of their own)
    d.signal(signal.SIGUSR1)
    time.sleep(0.2)
    assert get(d.port, "/x").status == 200
    deadline = time.monotonic() + 5
    while '"/x"' not in d.stdout():
        assert time.monotonic() < deadline, f"request not logged on stdout: {d.stdout()!r}"
        time.sleep(0.05)
    assert d.alive()


def test_signals_right_after_startup_are_handled(latchd):
    """Once latchd accepts connections, SIGHUP and SIGUSR1 (logrotate may send one at any
    moment) must be handled, never kill it with the default action."""
    deaths = []
    for i in range(8):
        for sig in (signal.SIGUSR1, signal.SIGHUP):
            d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])]}, name=f"s{i}{sig}")
            d.signal(sig)
            time.sleep(0.15)
            if not d.alive():
                deaths.append(f"{signal.Signals(sig).name}: exit status {d.proc.returncode}")
                d.stopped_by_test = True
            else:
                assert get(d.port, "/").status == 200
    assert not deaths, f"{len(deaths)} of 16 daemons killed by a signal sent just after startup: {deaths}"
