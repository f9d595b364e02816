"""gRPC end to end (issue 14): a real grpcio client over HTTP/2 (h2c prior knowledge) to latchd,
a real grpcio server as the app's h2c:// origin. Unary and bidirectional streaming calls with the
token in `cf-access-token` metadata; refused without one (UNAUTHENTICATED, and the origin never
sees the call); the client's deadline reaches the server (grpc-timeout); the server's status
and trailing metadata reach the client; large messages both ways under flow control."""

import json
import threading
from concurrent import futures

import grpc
import pytest

import authkit as ak
from harness import allow_app, free_port


class Service:
    """demo.Echo: Say (unary: the call as the server saw it, as JSON), Chat (bidirectional:
    each message back with its index), Fail (aborts NOT_FOUND)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {
            "Say": grpc.unary_unary_rpc_method_handler(self.say),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def record(self, ctx, name):
        md = {k: v for k, v in ctx.invocation_metadata()}
        with self.lock:
            self.calls.append((name, md))
        return md

    def say(self, req, ctx):
        md = self.record(ctx, "Say")
        ctx.set_trailing_metadata((("x-served-by", "origin"),))
        return json.dumps({"len": len(req), "head": req[:16].decode(errors="replace"),
                           "remaining": ctx.time_remaining(),
                           "metadata": sorted(md)}).encode()

    def chat(self, it, ctx):
        self.record(ctx, "Chat")
        for i, m in enumerate(it):
            yield i.to_bytes(4, "big") + m

    def fail(self, req, ctx):
        self.record(ctx, "Fail")
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def svc():
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def gw(latchd, svc):
    port = free_port()
    d = latchd({
        "listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
        "apps": [allow_app("g", ["g.localhost"], origin=f"h2c://127.0.0.1:{svc.port}")],
    }, port=port)
    d.token = ak.issue(d, "g", "ann@example.com")
    return d


def channel(gw):
    return grpc.insecure_channel(f"127.0.0.1:{gw.port}",
                                 options=[("grpc.default_authority", "g.localhost"),
                                          ("grpc.max_receive_message_length", 16 << 20),
                                          ("grpc.max_send_message_length", 16 << 20)])


def test_unary_with_token_and_deadline(gw, svc):
    with channel(gw) as ch:
        say = ch.unary_unary("/demo.Echo/Say")
        resp, call = say.with_call(b"hello grpc", timeout=7, metadata=[("cf-access-token", gw.token)])
        got = json.loads(resp)
        assert got["len"] == 10 and got["head"] == "hello grpc"
        # the client's deadline reached the server (grpc-timeout passed through)
        assert got["remaining"] is not None and 0 < got["remaining"] <= 7.5, got  # grpc-timeout rounds up
        # the identity reached the origin; the credential did not
        assert "cf-access-jwt-assertion" in got["metadata"] and "cf-access-token" not in got["metadata"]
        assert ("x-served-by", "origin") in call.trailing_metadata()
        # a big message both ways
        big = bytes(range(256)) * (3 << 12)  # 3 MiB (under the server's 4 MiB)
        resp = say(big, timeout=30, metadata=[("cf-access-token", gw.token)])
        assert json.loads(resp)["len"] == len(big)
    line = gw.wait_log(lambda l: l.get("app") == "g" and l.get("email") == "ann@example.com")
    assert line["status"] == 200 and line["decision"] == "allow"


def test_status_from_the_origin(gw, svc):
    with channel(gw) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/demo.Echo/Fail")(b"x", timeout=10, metadata=[("cf-access-token", gw.token)])
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and e.value.details() == "no such thing"


def test_bidirectional_streaming(gw, svc):
    msgs = [f"m{i}".encode() * (1 + i * 100) for i in range(60)] + [b"z" * (2 << 20)]
    with channel(gw) as ch:
        chat = ch.stream_stream("/demo.Echo/Chat")
        out = list(chat(iter(msgs), timeout=60, metadata=[("cf-access-token", gw.token)]))
    assert len(out) == len(msgs)
    for i, (m, r) in enumerate(zip(msgs, out)):
        assert r == i.to_bytes(4, "big") + m


def test_refused_without_token(gw, svc):
    with channel(gw) as ch:
        for md in ((), (("cf-access-token", "not.a.token"),)):
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary("/demo.Echo/Say")(b"x", timeout=10, metadata=md)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value
            with pytest.raises(grpc.RpcError) as e:
                list(ch.stream_stream("/demo.Echo/Chat")(iter([b"a", b"b"]), timeout=10, metadata=md))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value
    assert svc.calls == []  # the origin never saw a refused call


def test_many_concurrent_calls(gw, svc):
    errors = []

    def worker():
        try:
            with channel(gw) as ch:
                say = ch.unary_unary("/demo.Echo/Say")
                for i in range(20):
                    assert json.loads(say(b"%d" % i, timeout=20,
                                          metadata=[("cf-access-token", gw.token)]))["len"] == len(b"%d" % i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    assert len(svc.calls) == 160
