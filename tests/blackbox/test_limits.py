"""Running out of descriptors, and one client taking them all (issue 10, finding 5).

At the open-files limit accept(2) fails; the listener is level-triggered, so a worker that only
logs and returns is woken again at once: it spun on every core and wrote hundreds of MB of log.
The daemon must back off (CPU stays low, the log small; the admin socket's thread too), keep
serving the connections it has, close connections that never sent anything before refusing new
ones, and serve new connections again once descriptors are free. A per-client cap (`max_connections_per_client`) keeps one
address from taking them all; a trusted proxy (a load balancer) is exempt. CPU is measured as
the time the process consumed, with a generous bound, never as wall-clock timing."""

import os
import resource
import socket
import subprocess
import time

import pytest

from harness import LATCHD, RawConn, bypass_app
from test_config_check import check, error_lines, write

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def served(port, path="/ok", timeout=3, source=None):
    """One request on a new connection: True when it was answered 200."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
    except OSError:
        return False
    try:
        with RawConn(port, sock=s, timeout=timeout) as c:
            c.send(f"GET {path} HTTP/1.1\r\nHost: pub.localhost:{port}\r\n\r\n")
            return c.read_response().status == 200
    except (OSError, EOFError, ValueError):
        return False


def wait_until(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def flood(port, n, first_bytes=b""):
    """n client connections; each sends `first_bytes` (a head that never ends, or nothing)."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        if first_bytes:
            try:
                s.sendall(first_bytes)
            except OSError:
                pass
        socks.append(s)
    return socks


def closed_by_peer(s, timeout=5):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.fixture
def low_fd_gw(latchd):
    d = latchd({"workers": 1, "timeouts": {"header": "60s"},
                "apps": [bypass_app("pub", ["pub.localhost"])]})
    return d


@pytest.mark.timeout(120)
@pytest.mark.parametrize("first_bytes", [b"GET /slow HTTP/1.1\r\n", b""],
                         ids=["partial-heads", "silent"])
def test_out_of_descriptors_backs_off_and_keeps_serving(low_fd_gw, first_bytes):
    d = low_fd_gw
    keep = RawConn(d.port, timeout=10)
    keep.send(f"GET /before HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
    assert keep.read_response().status == 200
    limit = open_fds(d.pid) + 24
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (limit, limit))
    log_before = d.stderr_path.stat().st_size
    socks = flood(d.port, 150, first_bytes)
    admin = socket.socket(socket.AF_UNIX)
    try:
        wait_until(lambda: open_fds(d.pid) >= limit, "the flood did not fill the limit")
        # an admin client waiting meanwhile (`latchd status`): its thread must not spin either
        admin.connect(str(d.tmp / "state" / "admin.sock"))
        time.sleep(0.5)
        cpu0 = cpu_seconds(d.pid)
        time.sleep(3)
        used = cpu_seconds(d.pid) - cpu0
        assert used < 1.0, f"latchd used {used:.2f} s of CPU in 3 s at the open-files limit"
        grown = d.stderr_path.stat().st_size - log_before
        assert grown < 20000, f"the log grew by {grown} bytes:\n{d.stderr()[-2000:]}"
        assert "Too many open files" in d.stderr()
        # the connection already open is still served, on its keep-alive
        for i in range(3):
            keep.send(f"GET /during/{i} HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
            r = keep.read_response()
            assert r.status == 200 and r.json()["path"] == f"/during/{i}", r
        if not first_bytes:
            # connections that never sent a byte are closed first: a newcomer gets in while
            # the flood still holds its sockets
            wait_until(lambda: served(d.port, "/newcomer"), "a new client was not served "
                       "while silent connections held the descriptors")
            assert any(closed_by_peer(s, 0.5) for s in socks[:10])
    finally:
        admin.close()
        for s in socks:
            s.close()
    wait_until(lambda: served(d.port, "/after"), "new connections were not served after the flood")
    keep.close()


def test_per_client_cap(latchd):
    d = latchd({"workers": 2, "max_connections_per_client": 3,
                "apps": [bypass_app("pub", ["pub.localhost"])]})
    held = []
    while len(held) < 3:  # the daemon may still count the harness's probe a moment longer
        c = RawConn(d.port, timeout=10)
        try:
            c.send(f"GET /held HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
            assert c.read_response().status == 200
            held.append(c)
        except (OSError, EOFError):
            c.close()
            assert len(held) < 3
            time.sleep(0.1)
    over = flood(d.port, 20)
    assert all(closed_by_peer(s) for s in over), "a connection over the cap was kept"
    for s in over:
        s.close()
    # the connections within the cap still work; another client address has its own budget
    held[0].send(f"GET /still HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
    assert held[0].read_response().status == 200
    assert served(d.port, source="127.0.0.2")
    # one closes: its place is free again
    held.pop().close()
    wait_until(lambda: served(d.port), "a connection was not served after one closed")
    log = d.stderr()
    assert "max_connections_per_client" in log
    assert log.count("connection refused") <= 2, log  # rate-limited
    for c in held:
        c.close()


@pytest.mark.parametrize("extra", [{"trusted_proxies": ["127.0.0.1/32"]},
                                   {"max_connections_per_client": 0}],
                         ids=["trusted-proxy-exempt", "zero-is-off"])
def test_per_client_cap_exemptions(latchd, extra):
    cfg = {"workers": 1, "max_connections_per_client": 2,
           "apps": [bypass_app("pub", ["pub.localhost"])]}
    cfg.update(extra)
    d = latchd(cfg)
    conns = [RawConn(d.port, timeout=10) for _ in range(8)]
    for i, c in enumerate(conns):
        c.send(f"GET /c/{i} HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        assert c.read_response().status == 200
    for c in conns:
        c.close()


@pytest.mark.parametrize("value", ["-1", "abc", "2000000", "1.5", "[3]"])
def test_check_refuses_bad_cap(tmp_path, value):
    text = ("listen: [{address: 127.0.0.1:8080}]\n"
            f"state_dir: {tmp_path}/state\n"
            f"max_connections_per_client: {value}\n"
            "apps: []\n")
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert errs and errs[0][0] == 3 and errs[0][1] == 29, out
    assert "max_connections_per_client" in errs[0][2]
