"""HSTS (issue 10, optional): with `hsts:` configured, every answer on a listener browsers reach
over https (TLS, or plain behind a TLS terminator that `public: {scheme: https}` declares)
carries Strict-Transport-Security, the gateway's own answers and proxied ones alike (the
configured header replaces an origin's); never on a plain HTTP listener, where an origin's own
passes untouched. Without `hsts:` latch adds none. `latchd check` refuses what browsers would
not accept."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import bypass_app, curl, free_port
from test_config_check import check, error_lines, write
from test_tls import certs, make_cert  # noqa: F401  (certs is a fixture)

ORIGIN_STS = "max-age=5"


@pytest.fixture
def sts_origin():
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(h):
            h.send_response(200)
            h.send_header("Strict-Transport-Security", ORIGIN_STS)
            h.send_header("Content-Length", "2")
            h.end_headers()
            h.wfile.write(b"ok")

        def log_message(h, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def gateway(latchd, certs, origin, hsts):  # noqa: F811
    tls_port, plain_port, behind_port = free_port(), free_port(), free_port()
    crt, key, _ = certs["a.localhost"]
    cfg = {"listen": [{"address": f"127.0.0.1:{tls_port}", "tls": {"cert": str(crt), "key": str(key)}},
                      {"address": f"127.0.0.1:{plain_port}"},
                      {"address": f"127.0.0.1:{behind_port}", "public": {"scheme": "https", "port": 443}}],
           "auth_domain": f"a.localhost:{tls_port}",
           "apps": [bypass_app("a", ["a.localhost"], origin=origin),
                    bypass_app("e", ["e.localhost"])]}
    if hsts is not None:
        cfg["hsts"] = hsts
    d = latchd(cfg, port=tls_port, extra_ports=[plain_port, behind_port])
    d.behind_port = behind_port  # plain, behind a TLS terminator
    return d, tls_port, plain_port, crt


def fetch(port, host, path, crt=None):
    if crt:  # the certificate names a.localhost: other hosts in the Host header
        r = curl(f"https://a.localhost:{port}{path}", "--resolve", f"a.localhost:{port}:127.0.0.1",
                 "--cacert", str(crt), "-H", f"Host: {host}:{port}")
    else:
        r = curl(f"http://{host}:{port}{path}")
    assert r.rc == 0, r
    return r


@pytest.mark.parametrize("hsts,want", [
    ({"max_age": "365d"}, "max-age=31536000"),
    ({"max_age": "2h", "include_subdomains": True}, "max-age=7200; includeSubDomains"),
    ({"max_age": "730d", "include_subdomains": True, "preload": True},
     "max-age=63072000; includeSubDomains; preload"),
    ({"max_age": 0}, "max-age=0"),
])
def test_hsts_on_tls_answers_only(latchd, certs, sts_origin, hsts, want):  # noqa: F811
    d, tls, plain, crt = gateway(latchd, certs, sts_origin, hsts)
    # proxied (the origin's own is replaced), the echo origin, the gateway's own answers
    for host, path, status in [("a.localhost", "/", 200), ("e.localhost", "/x", 200),
                               ("e.localhost", "/cdn-cgi/access/certs", 200),
                               ("nobody.localhost", "/", 404)]:
        r = fetch(tls, host, path, crt)
        assert r.status == status, r
        assert r.headers.get("strict-transport-security") == want, (host, path, r.headers)
        r = fetch(plain, host, path)
        assert r.status == status, r
        got = r.headers.get("strict-transport-security")
        assert got == (ORIGIN_STS if host == "a.localhost" else None), (host, path, got)
        r = fetch(d.behind_port, host, path)
        assert r.status == status, r
        assert r.headers.get("strict-transport-security") == want, (host, path, r.headers)


def test_no_hsts_by_default(latchd, certs, sts_origin):  # noqa: F811
    d, tls, plain, crt = gateway(latchd, certs, sts_origin, None)
    assert fetch(tls, "a.localhost", "/", crt).headers.get("strict-transport-security") == ORIGIN_STS
    assert fetch(tls, "e.localhost", "/", crt).headers.get("strict-transport-security") is None
    assert fetch(plain, "e.localhost", "/").headers.get("strict-transport-security") is None


CONFIG = """\
listen:
  - address: 127.0.0.1:8443
    {tls}
state_dir: {tmp}/state
hsts: {hsts}
apps: []
"""


@pytest.mark.parametrize("hsts,msg", [
    ("{max_age: 365d, preload: true}", "'preload' needs include_subdomains"),
    ("{max_age: 30d, include_subdomains: true, preload: true}", "at least 365d"),
    ("{max_age: forever}", "'max_age' must be a duration"),
    ("{max_age: -5}", "'max_age' must be a duration"),
    ("{include_subdomains: true}", "missing required key 'max_age'"),
    ("{max_age: 1d, includeSubDomains: true}", "unknown key 'includeSubDomains'"),
    ("{max_age: 1d, preload: yes}", "'preload' must be true or false"),
    ("true", "hsts must be a mapping"),
])
def test_check_refuses_bad_hsts(tmp_path, certs, hsts, msg):  # noqa: F811
    crt, key, _ = certs["a.localhost"]
    text = CONFIG.format(tmp=tmp_path, hsts=hsts, tls=f"tls: {{cert: {crt}, key: {key}}}")
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert len(errs) == 1 and errs[0][0] == 5 and errs[0][1] >= 7, out
    assert msg in errs[0][2], out


def test_check_refuses_hsts_without_tls(tmp_path):
    text = CONFIG.format(tmp=tmp_path, hsts="{max_age: 365d}", tls="")
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert len(errs) == 1 and errs[0][:2] == (5, 7) and "reached over https" in errs[0][2], out
