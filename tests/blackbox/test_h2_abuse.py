"""HTTP/2 denial of service, bounded (docs/configuration.md `http2`): rapid reset
(CVE-2023-44487), CONTINUATION flood, HPACK bomb, SETTINGS/PING/WINDOW_UPDATE floods, zero-window
stalls, many idle streams. The misbehaving client gets GOAWAY; another client's requests are
answered meanwhile (no timing is asserted)."""

import threading

import hpack
import pytest

import h2kit
from h2kit import Client, frame, get, goaway_code, read_frames
from harness import Origin, bypass_app, free_port


@pytest.fixture
def origin():
    o = Origin(body_size=4 * 1024 * 1024)
    yield o
    o.close()


@pytest.fixture
def gw(latchd, origin):
    port = free_port()
    return latchd({
        "listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
        "workers": 1,  # the attacker and the bystander share the worker
        "timeouts": {"client": "2s", "idle": "3s", "origin_response": "3s", "header": "3s"},
        "http2": {"max_concurrent_streams": 20},
        "apps": [bypass_app("a", ["a.localhost"]), bypass_app("big", ["big.localhost"], origin=origin.url)],
    }, port=port)


def bystander_ok(gw):
    c = Client(gw.port)
    sid = c.request(get("a.localhost", "/bystander"))
    st = c.response(sid)[0]
    c.close()
    return st == 200


def attack(gw, payload_fn):
    """Sends the attack from a thread, checks a second client meanwhile; returns the frames the
    attacker got back."""
    s = h2kit.connect(gw.port)
    s.sendall(h2kit.PREFACE + frame(h2kit.SETTINGS, 0, 0))
    done = threading.Event()

    def send():
        try:
            for chunk in payload_fn():
                s.sendall(chunk)
        except OSError:
            pass
        done.set()

    t = threading.Thread(target=send, daemon=True)
    t.start()
    assert bystander_ok(gw), "another client was not answered during the attack"
    frames = read_frames(s, lambda fr: goaway_code(fr) is not None, timeout=30)
    t.join(30)
    s.close()
    assert bystander_ok(gw)
    assert gw.alive()
    return frames


def headers_block(sid, host="a.localhost", path="/", end=True):
    enc = hpack.Encoder()
    block = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", path)])
    return frame(h2kit.HEADERS, h2kit.END_HEADERS | (h2kit.END_STREAM if end else 0), sid, block)


def test_rapid_reset(gw):
    def payload():
        sid = 1
        for _ in range(40):
            out = b""
            for _ in range(100):
                out += headers_block(sid, "big.localhost", "/slow", end=True)
                out += frame(h2kit.RST_STREAM, 0, sid, (h2kit.CANCEL).to_bytes(4, "big"))
                sid += 2
            yield out
    frames = attack(gw, payload)
    assert goaway_code(frames) in (h2kit.ENHANCE_YOUR_CALM, h2kit.PROTOCOL_ERROR), frames[-3:]


def test_continuation_flood(gw):
    def payload():
        enc = hpack.Encoder()
        block = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "a.localhost"), (":path", "/")])
        yield frame(h2kit.HEADERS, 0, 1, block)
        for _ in range(5000):
            yield frame(h2kit.CONTINUATION, 0, 1, enc.encode([("x-a", "b" * 100)]))
    frames = attack(gw, payload)
    assert goaway_code(frames) is not None


def test_hpack_bomb_bounded(gw):
    # one 4 KiB field in the dynamic table, then referenced 1000 times: 4 MB decoded from 1 KB
    enc = hpack.Encoder()
    first = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "a.localhost"), (":path", "/"),
                        ("x-bomb", "b" * 4000)])
    c = Client(gw.port)
    c.sock.sendall(frame(h2kit.HEADERS, h2kit.END_HEADERS | h2kit.END_STREAM, 1, first))
    ref = enc.encode([("x-bomb", "b" * 4000)])  # an index into the dynamic table
    assert len(ref) < 4
    block = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "a.localhost"),
                        (":path", "/bomb")]) + ref * 1000
    c.sock.sendall(frame(h2kit.HEADERS, h2kit.END_HEADERS | h2kit.END_STREAM, 3, block))
    frames = read_frames(c.sock, lambda fr: any(f[0] in (h2kit.HEADERS, h2kit.RST_STREAM) and f[2] == 3
                                                for f in fr) or goaway_code(fr) is not None)
    got = [f for f in frames if f[2] == 3]
    dec = hpack.Decoder()
    answer = None
    for t, fl, sid, p in frames:
        if t == h2kit.HEADERS:
            h = dict(dec.decode(p))
            if sid == 3:
                answer = h[":status"]
    assert answer == "431" or goaway_code(frames) is not None or any(t == h2kit.RST_STREAM for t, *_ in got), frames
    c.close()
    assert bystander_ok(gw)


@pytest.mark.parametrize("kind", ["ping", "settings", "window_update", "priority", "empty_data"])
def test_control_frame_floods(gw, kind):
    def payload():
        one = {
            "ping": frame(h2kit.PING, 0, 0, b"12345678"),
            "settings": frame(h2kit.SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64"),
            "window_update": frame(h2kit.WINDOW_UPDATE, 0, 0, (1).to_bytes(4, "big")),
            "priority": frame(h2kit.PRIORITY, 0, 1, b"\x00\x00\x00\x00\x10"),
            "empty_data": b"",
        }[kind]
        if kind == "empty_data":
            yield headers_block(1, "a.localhost", "/", end=False)
            one = frame(h2kit.DATA, 0, 1, b"")
        for _ in range(100):
            yield one * 100
    frames = attack(gw, payload)
    assert goaway_code(frames) == h2kit.ENHANCE_YOUR_CALM, frames[-3:]


@pytest.mark.parametrize("host", ["big.localhost", "a.localhost"])
def test_zero_window_stall_closed(gw, host):
    # a client that never opens its window: its stream and then its connection are closed,
    # whether the answer is larger than what a stream holds (4 MiB) or a small one held whole
    c = Client(gw.port, settings={h2kit.h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, get(host, "/big"), end_stream=True)
    c.flush()
    # read without ever acknowledging data (no WINDOW_UPDATE): raw frames
    frames = read_frames(c.sock, lambda fr: any(f[0] == "eof" for f in fr), timeout=60)
    assert frames and frames[-1][0] == "eof", "the stalled connection was not closed"
    assert bystander_ok(gw)


def test_many_idle_streams_refused_then_closed(gw):
    s = h2kit.connect(gw.port)
    out = h2kit.PREFACE + frame(h2kit.SETTINGS, 0, 0)
    for i in range(40):  # max_concurrent_streams is 20: the rest are refused
        out += headers_block(1 + 2 * i, "a.localhost", "/idle", end=False)
    s.sendall(out)
    frames = read_frames(s, lambda fr: any(f[0] == "eof" for f in fr), timeout=60)
    resets = [f for f in frames if f[0] == h2kit.RST_STREAM]
    assert resets, "streams beyond max_concurrent_streams were not refused"
    assert frames[-1][0] == "eof", "idle streams kept the connection open forever"
    s.close()
    assert bystander_ok(gw)
