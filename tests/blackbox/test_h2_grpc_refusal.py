"""gRPC calls the gateway refuses get a gRPC answer (HTTP 200, grpc-status 16 UNAUTHENTICATED
without a valid token, 7 PERMISSION_DENIED when the policy refuses, a grpc-message), so that
clients show the reason instead of a protocol error; on HTTP/2 (a real grpcio client) and on
HTTP/1.1."""

import grpc
import pytest

from harness import allow_app, block_app, curl, free_port


@pytest.fixture
def gw(latchd):
    port = free_port()
    return latchd({
        "listen": [{"address": f"127.0.0.1:{port}", "http2": "prior_knowledge"}],
        "apps": [allow_app("g", ["g.localhost"]), block_app("blocked", ["blocked.localhost"])],
    }, port=port)


def call(gw, authority, metadata=()):
    with grpc.insecure_channel(f"127.0.0.1:{gw.port}", options=[("grpc.default_authority", authority)]) as ch:
        m = ch.unary_unary("/demo.Echo/Say", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            m(b"\x0a\x02hi", timeout=20, metadata=metadata)
        return e.value


def test_no_token_unauthenticated(gw):
    e = call(gw, "g.localhost")
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    assert "token" in e.details()
    line = gw.wait_log(lambda l: l.get("app") == "g")
    assert line["status"] == 200 and line["decision"] == "login_required"


def test_bad_token_unauthenticated(gw):
    e = call(gw, "g.localhost", metadata=[("cf-access-token", "not.a.token")])
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e


def test_policy_denies_permission_denied(gw):
    e = call(gw, "blocked.localhost")
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e


def test_http1_grpc_refusal_same_shape(gw):
    r = curl(f"http://127.0.0.1:{gw.port}/demo.Echo/Say", "-H", "Host: g.localhost",
             "-H", "Content-Type: application/grpc+proto", "--data-binary", "x")
    assert r.status == 200 and r.headers.get("grpc-status") == "16", r
    assert r.headers.get("content-type") == "application/grpc" and r.body == b""
    # not gRPC: the usual 401
    r = curl(f"http://127.0.0.1:{gw.port}/x", "-H", "Host: g.localhost")
    assert r.status == 401
