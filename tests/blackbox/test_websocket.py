"""WebSocket through latchd (SPEC.md §8): the Upgrade is tunnelled after the policy allowed it,
frames flow both ways unchanged; a refused Upgrade never reaches the origin."""

import asyncio
import base64
import hashlib
import os
import struct
import subprocess
import sys
import time

import pytest
import websockets

from harness import RawConn, block_app, bypass_app, free_port, stop_pid, wait_port

WS_SERVER = r'''
import asyncio, sys, websockets
log = open(sys.argv[2], "a", buffering=1)
async def echo(ws, path=None):
    p = path if path is not None else ws.path
    log.write(p + "\n")
    async for m in ws:
        if m == "path?":
            await ws.send(p)
        else:
            await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None):
        await asyncio.Future()
asyncio.run(main())
'''


@pytest.fixture
def ws_origin(tmp_path):
    port = free_port()
    script = tmp_path / "ws_server.py"
    script.write_text(WS_SERVER)
    log = tmp_path / "ws.log"
    log.write_text("")
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(log)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "ws.err", "wb"))
    try:
        wait_port(port, 10, proc)
        yield port, log
    finally:
        stop_pid(proc)


@pytest.fixture
def ws_gw(latchd, ws_origin):
    port, _ = ws_origin
    return latchd({"apps": [bypass_app("ws", ["ws.localhost"], origin=f"http://127.0.0.1:{port}"),
                            block_app("wsb", ["wsb.localhost"], origin=f"http://127.0.0.1:{port}")]})


def test_websocket_echo_with_library(ws_gw):
    async def run():
        import socket
        s = socket.create_connection(("127.0.0.1", ws_gw.port), timeout=5)
        s.setblocking(False)
        async with websockets.connect(f"ws://ws.localhost:{ws_gw.port}/chat/./room?x=1",
                                      sock=s, open_timeout=5, close_timeout=2,
                                      max_size=None) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
            blob = os.urandom(300_000)
            await ws.send(blob)
            assert await asyncio.wait_for(ws.recv(), 5) == blob
            for i in range(50):
                await ws.send(f"m{i}")
            for i in range(50):
                assert await asyncio.wait_for(ws.recv(), 5) == f"m{i}"
            await ws.send("path?")
            return await asyncio.wait_for(ws.recv(), 5)

    path = asyncio.run(asyncio.wait_for(run(), 30))
    assert path == "/chat/room?x=1"


def test_websocket_raw_handshake(ws_gw):
    key = base64.b64encode(os.urandom(16)).decode()
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                         .encode()).digest()).decode()
    with RawConn(ws_gw.port, timeout=5) as c:
        c.send(f"GET /raw HTTP/1.1\r\nHost: ws.localhost:{ws_gw.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        status, _, headers, raw = c.read_head()
        assert status == 101, raw
        h = {k.lower(): v for k, v in headers}
        assert h["upgrade"].lower() == "websocket"
        assert h["sec-websocket-accept"] == want
        payload = b"raw frame through the tunnel"
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        c.send(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        hdr = c.read_exact(2)
        assert hdr[0] == 0x81 and hdr[1] == len(payload), hdr
        assert c.read_exact(len(payload)) == payload


def test_websocket_refused_upgrade_never_reaches_origin(ws_gw, ws_origin):
    _, log = ws_origin
    key = base64.b64encode(os.urandom(16)).decode()
    with RawConn(ws_gw.port, timeout=5) as c:
        c.send(f"GET /blocked HTTP/1.1\r\nHost: wsb.localhost:{ws_gw.port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response()
        assert r.status == 403, r
    time.sleep(0.3)
    assert "/blocked" not in log.read_text()
