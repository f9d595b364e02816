"""Streamed bodies with bounded buffers (SPEC.md §8): a 1 GiB upload (curl, Content-Length,
through the echo origin) and a 1 GiB download (nginx origin, with a client that stops reading
for a while) pass through while latchd's RSS stays flat; a 256 MiB chunked upload too."""

import hashlib
import os
import socket
import subprocess
import time

import pytest

from harness import RawConn, RssSampler, bypass_app, curl, get

RSS_GROWTH_LIMIT_KIB = 64 * 1024
GIB = 1 << 30


def warm(d, host="pub.localhost"):
    for _ in range(3):
        assert get(d.port, "/warm", host=host).status == 200
    time.sleep(0.2)
    return d.rss_kib()


@pytest.mark.timeout(240)
def test_upload_1gib_content_length(latchd, big_file):
    path, sha = big_file
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])], "workers": 2})
    base = warm(d)
    with RssSampler(d.pid) as s:
        t0 = time.monotonic()
        r = curl(d.url("pub.localhost", "/big-upload"), "-T", str(path), timeout=120)
        took = time.monotonic() - t0
    assert r.rc == 0 and r.status == 200, r
    j = r.json()
    assert j["body_bytes"] == GIB
    assert j["body_sha256"] == sha
    growth = s.max_kib - base
    print(f"1 GiB upload: {took:.1f}s, RSS base {base} KiB, max {s.max_kib} KiB")
    assert growth < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {growth} KiB during a 1 GiB upload"
    e = d.wait_log(lambda e: e.get("path") == "/big-upload")
    assert e["bytes_in"] >= GIB, e


@pytest.mark.timeout(180)
def test_upload_256mib_chunked(latchd, big_file):
    path, _ = big_file
    n = 256 << 20
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])]})
    base = warm(d)
    sha = hashlib.sha256()
    sizes = [1, 4095, 65536, 1 << 20, 777777, 3]
    with RssSampler(d.pid) as s, open(path, "rb") as f, RawConn(d.port, timeout=60) as c:
        c.send(f"POST /chunked-upload HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n")
        left, i = n, 0
        while left:
            k = min(left, sizes[i % len(sizes)])
            data = f.read(k)
            sha.update(data)
            c.send(b"%x\r\n" % k + data + b"\r\n")
            left -= k
            i += 1
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    j = r.json()
    assert j["body_bytes"] == n
    assert j["body_sha256"] == sha.hexdigest()
    assert s.max_kib - base < RSS_GROWTH_LIMIT_KIB, (base, s.max_kib)


@pytest.mark.timeout(240)
def test_download_1gib_slow_reader(latchd, nginx_factory, big_file):
    path, sha = big_file
    ng = nginx_factory(f"location / {{ root {path.parent}; }}")
    d = latchd({"apps": [bypass_app("dl", ["dl.localhost"], origin=f"http://127.0.0.1:{ng.port}")],
                "timeouts": {"client": "30s", "origin_response": "30s"}})
    assert get(d.port, "/nothing-here", host="dl.localhost").status == 404  # nginx's 404
    base = d.rss_kib()
    h = hashlib.sha256()
    got = 0
    paused = False
    with RssSampler(d.pid) as s, RawConn(d.port, timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        t0 = time.monotonic()
        c.send(f"GET /{path.name} HTTP/1.1\r\nHost: dl.localhost:{d.port}\r\n\r\n")
        status, _, headers, raw = c.read_head()
        assert status == 200, raw
        hm = {k.lower(): v for k, v in headers}
        if c.buf:
            h.update(c.buf)
            got += len(c.buf)
            c.buf.clear()
        while got < GIB:
            if not paused and got > (100 << 20):
                time.sleep(3)  # stop reading: latchd must apply backpressure, not buffer
                paused = True
                pause_rss = d.rss_kib()
            data = c.sock.recv(1 << 20)
            if not data:
                break
            h.update(data)
            got += len(data)
        took = time.monotonic() - t0
    print(f"1 GiB download: {took:.1f}s, RSS base {base} KiB, max {s.max_kib} KiB")
    assert got == GIB, f"received {got} bytes"
    assert h.hexdigest() == sha
    assert hm.get("content-length") == str(GIB) or "chunked" in hm.get("transfer-encoding", "")
    assert pause_rss - base < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {pause_rss - base} KiB while the client paused"
    assert s.max_kib - base < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {s.max_kib - base} KiB"
    e = d.wait_log(lambda e: e.get("path") == f"/{path.name}")
    assert e["bytes_out"] >= GIB, e
