"""TLS listeners (SPEC.md §2, docs/config-extras.md): several certificates chosen by SNI (the
first is the default), TLS 1.2 and 1.3 only, X-Forwarded-Proto https."""

import socket
import ssl
import subprocess
import threading
import warnings

import pytest

from harness import RawConn, bypass_app, curl, free_port


def make_cert(d, name):
    key, crt = d / f"{name}-key.pem", d / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True, timeout=60)
    der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    return crt, key, der


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return {n: make_cert(d, n) for n in ("a.localhost", "b.localhost")}


@pytest.fixture
def tls_gw(latchd, certs):
    port = free_port()
    a, b = certs["a.localhost"], certs["b.localhost"]
    return latchd({
        "listen": [{"address": f"127.0.0.1:{port}",
                    "tls": [{"cert": str(a[0]), "key": str(a[1])},
                            {"cert": str(b[0]), "key": str(b[1])}]}],
        "auth_domain": f"a.localhost:{port}",
        "apps": [bypass_app("a", ["a.localhost"]), bypass_app("b", ["b.localhost"])],
    }, port=port)


def presented_cert(port, sni, **ctx_kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in ctx_kw.items():
        setattr(ctx, k, v)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True), t.version()


@pytest.mark.parametrize("name", ["a.localhost", "b.localhost"])
def test_sni_selects_certificate_curl(tls_gw, certs, name):
    crt = certs[name][0]
    p = tls_gw.port
    r = curl(f"https://{name}:{p}/tls?x=1", "--resolve", f"{name}:{p}:127.0.0.1",
             "--cacert", str(crt))
    assert r.rc == 0 and r.status == 200, r
    j = r.json()
    assert j["path"] == "/tls"
    assert j["headers"]["x-forwarded-proto"] == "https"
    assert j["headers"]["host"] == f"{name}:{p}"


def test_sni_wrong_ca_fails(tls_gw, certs):
    p = tls_gw.port
    r = curl(f"https://b.localhost:{p}/", "--resolve", f"b.localhost:{p}:127.0.0.1",
             "--cacert", str(certs["a.localhost"][0]))
    assert r.rc != 0, "b.localhost must not be served with a.localhost's certificate"


def test_presented_cert_per_sni(tls_gw, certs):
    p = tls_gw.port
    assert presented_cert(p, "a.localhost")[0] == certs["a.localhost"][2]
    assert presented_cert(p, "b.localhost")[0] == certs["b.localhost"][2]
    assert presented_cert(p, "B.LOCALHOST")[0] == certs["b.localhost"][2]
    # unknown name and no SNI at all: the first certificate is the default
    assert presented_cert(p, "c.localhost")[0] == certs["a.localhost"][2]
    assert presented_cert(p, None)[0] == certs["a.localhost"][2]


def test_tls12_and_13_accepted(tls_gw):
    p = tls_gw.port
    _, v = presented_cert(p, "a.localhost", maximum_version=ssl.TLSVersion.TLSv1_2,
                          minimum_version=ssl.TLSVersion.TLSv1_2)
    assert v == "TLSv1.2"
    _, v = presented_cert(p, "a.localhost", minimum_version=ssl.TLSVersion.TLSv1_3)
    assert v == "TLSv1.3"


def old_tls_client(ver):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = getattr(ssl.TLSVersion, ver)
        ctx.maximum_version = getattr(ssl.TLSVersion, ver)
    return ctx


def permissive_server_accepts(ver, certs):
    """Control: this client really speaks `ver` (a permissive local server accepts it)."""
    crt, key, _ = certs["a.localhost"]
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(str(crt), str(key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv.set_ciphers("ALL:@SECLEVEL=0")
        srv.minimum_version = ssl.TLSVersion.TLSv1
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(5)
    result = {}

    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(5)
            with srv.wrap_socket(c, server_side=True) as t:
                result["v"] = t.version()
        except (OSError, ssl.SSLError):
            pass

    th = threading.Thread(target=serve)
    th.start()
    try:
        with socket.create_connection(ls.getsockname(), timeout=5) as s:
            with old_tls_client(ver).wrap_socket(s, server_hostname="a.localhost") as t:
                ok = t.version() is not None
    except (OSError, ssl.SSLError):
        ok = False
    th.join(5)
    ls.close()
    return ok


@pytest.mark.parametrize("ver", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(tls_gw, certs, ver):
    if not permissive_server_accepts(ver, certs):
        pytest.skip(f"this client cannot speak {ver} at all; the test would prove nothing")
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=5) as s:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with old_tls_client(ver).wrap_socket(s, server_hostname="a.localhost"):
                pass


def test_plain_http_on_tls_port_does_not_reach_app(tls_gw):
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=5) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: a.localhost:{tls_gw.port}\r\n\r\n".encode())
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert b"body_sha256" not in data
    assert tls_gw.alive()


def test_tls_keepalive_and_pipelining(tls_gw, certs):
    p = tls_gw.port
    ctx = ssl.create_default_context(cafile=str(certs["b.localhost"][0]))
    raw = socket.create_connection(("127.0.0.1", p), timeout=5)
    c = RawConn(p, sock=ctx.wrap_socket(raw, server_hostname="b.localhost"), timeout=5)
    try:
        for i in range(10):
            c.send(f"GET /k/{i} HTTP/1.1\r\nHost: b.localhost:{p}\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/k/{i}"
        c.send("".join(f"GET /pl/{i} HTTP/1.1\r\nHost: b.localhost:{p}\r\n\r\n"
                       for i in range(10)))
        for i in range(10):
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/pl/{i}"
    finally:
        c.close()
