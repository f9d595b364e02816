"""Headers origins act on that latch does not set (issue 10): client addresses, URL and method
overrides, the rest of X-Forwarded-*, Cloudflare's edge headers, other auth proxies' user
headers, every '_' spelling of them and of latch's own, and Proxy (httpoxy). A client's copy
never reaches the origin, bypass requests included, unless the app lists the name in
`keep_client_headers`; latch's identity headers can never be kept (`latchd check` says so at
FILE:LINE:COL)."""

import pytest

from authkit import issue
from harness import RawConn, allow_app, bypass_app
from test_config_check import check, error_lines, write

SPOOFED = [
    "X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-HTTP-Method-Override",
    "X-HTTP-Method", "X-Method-Override", "X-Real-IP", "X-Client-IP", "True-Client-IP",
    "X-Cluster-Client-IP", "Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
    "Forwarded", "X-Forwarded", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix",
    "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Forwarded-Uri", "X-Forwarded-User",
    "X-Forwarded-Email", "X-Original-Forwarded-For", "X-ProxyUser-Ip", "Fastly-Client-IP",
    "X-Azure-ClientIP", "X-Url-Scheme", "X-Scheme", "Front-End-Https", "X-Original-Host",
    "X-Host", "Remote-User", "X-Remote-User", "X-WEBAUTH-USER", "X-Auth-Request-Email",
    "CF-Connecting-IP", "CF-Connecting-IPv6", "CF-IPCountry", "CF-Visitor", "CF-Ray",
    "CF-Worker", "CF-EW-Via", "Proxy",
]
# '_' spellings: of the names above and of latch's own (an origin that folds '_' into '-', as
# CGI, PHP and WSGI servers do, would read them as those)
UNDERSCORED = [
    "X_Real_IP", "X-Real_IP", "x_original_url", "X_HTTP_Method_Override", "X_Forwarded_For",
    "X_Forwarded_Proto", "X_Forwarded_Host", "X-Forwarded_Host", "X_Forwarded_Port",
    "X_Request_Id", "True_Client_IP", "CF_Connecting_IP", "Cf_Access_Jwt_Assertion",
    "Cf-Access_Authenticated-User-Email", "Remote_User",
    # every other punctuation a name may hold: lighttpd's CGI/FastCGI/SCGI turn it into '_' too
    "Cf.Access.Authenticated.User.Email", "Cf+Access+Authenticated+User+Email", "X.Real.IP",
    "X.Original.URL", "X~Original~URL", "X.Forwarded.For", "Remote.User", "X*Real*IP",
    "X!Real!IP", "X'Forwarded'Host", "X^Real^IP", "X`Real`IP", "X|Real|IP", "X#Real$IP",
]
PASSING = ["Authorization", "X-Custom-Header", "X_Custom_Header", "Accept-Language",
           "X-Api-Key"]


def send(port, host, headers, extra=()):
    lines = [f"GET /h HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in list(headers) + list(extra)]
    with RawConn(port, timeout=10) as c:
        c.send("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n")
        return c.read_response()


def values(name):
    return f"spoofed-{name.lower()}"


@pytest.fixture
def gw(latchd, origin):
    return latchd({
        "workers": 1,
        "apps": [bypass_app("pub", ["pub.localhost"], origin=origin.url),
                 allow_app("priv", ["priv.localhost"], origin=origin.url),
                 bypass_app("echo", ["echo.localhost"])],
    })


def received(origin):
    req = origin.requests[-1]
    return {k.lower(): v for k, v in req["headers"]}, [k for k, _ in req["headers"]]


@pytest.mark.parametrize("host", ["pub", "priv"], ids=["bypass", "allowed"])
def test_spoofable_headers_never_reach_the_origin(gw, origin, host):
    hs = [(n, values(n)) for n in SPOOFED + UNDERSCORED + PASSING]
    extra = []
    if host == "priv":
        extra = [("cf-access-token", issue(gw, "priv", "alice@example.com"))]
    r = send(gw.port, f"{host}.localhost", hs, extra)
    assert r.status == 200, r
    got, names = received(origin)
    for n in SPOOFED + UNDERSCORED:
        assert n.lower() not in got, f"{n} reached the origin: {names}"
    # nothing the client wrote under any of those names, in any spelling
    for k, v in origin.requests[-1]["headers"]:
        assert not v.startswith("spoofed-") or k in PASSING, (k, v)
    for n in PASSING:
        assert got.get(n.lower()) == values(n), f"{n} did not pass: {names}"
    # latch's own are latch's
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == f"{host}.localhost:{gw.port}"
    if host == "priv":
        assert got["cf-access-authenticated-user-email"] == "alice@example.com"


def test_echo_origin_too(gw):
    r = send(gw.port, "echo.localhost", [("X-Original-URL", "/admin"), ("X_Real_IP", "10.1.1.1"),
                                         ("CF-Connecting-IP", "10.2.2.2"), ("X-Keep", "yes")])
    h = r.json()["headers"]
    assert "x-original-url" not in h and "x_real_ip" not in h and "cf-connecting-ip" not in h, h
    assert h["x-keep"] == "yes"


def test_keep_client_headers(latchd, origin):
    gw = latchd({"workers": 1, "apps": [
        dict(bypass_app("keep", ["keep.localhost"], origin=origin.url),
             keep_client_headers=["X-Real-IP", "cf-ipcountry", "Forwarded"]),
        bypass_app("pub", ["pub.localhost"], origin=origin.url)]})
    hs = [("X-Real-IP", "192.0.2.7"), ("CF-IPCountry", "NZ"), ("Forwarded", "for=192.0.2.7"),
          ("X_Real_IP", "10.9.9.9"), ("X-Original-URL", "/admin"), ("True-Client-IP", "10.8.8.8"),
          ("Cf-Access-Authenticated-User-Email", "boss@example.com"),
          ("X-Forwarded-For", "10.7.7.7")]
    r = send(gw.port, "keep.localhost", hs)
    assert r.status == 200, r
    got, names = received(origin)
    assert got["x-real-ip"] == "192.0.2.7"
    assert got["cf-ipcountry"] == "NZ"
    assert got["forwarded"] == "for=192.0.2.7"
    for n in ("x_real_ip", "x-original-url", "true-client-ip", "cf-access-authenticated-user-email"):
        assert n not in got, names
    assert got["x-forwarded-for"] == "127.0.0.1"
    # another app on the same origin keeps nothing
    send(gw.port, "pub.localhost", hs)
    got, names = received(origin)
    assert "x-real-ip" not in got and "cf-ipcountry" not in got, names


APP = """\
listen: [{{address: 127.0.0.1:8080}}]
state_dir: {tmp}/state
apps:
  - name: a
    domains: [a.localhost]
    origin: echo
    policies: [{{name: p, decision: bypass, include: [{{everyone: {{}}}}]}}]
    keep_client_headers: [{names}]
"""


@pytest.mark.parametrize("name,why", [
    ("X-Forwarded-For", "set by the gateway"),
    ("x-forwarded-proto", "set by the gateway"),
    ("X-Forwarded-Host", "set by the gateway"),
    ("X-Request-Id", "set by the gateway"),
    ("Cf-Access-Jwt-Assertion", "set by the gateway"),
    ("Cf-Access-Authenticated-User-Email", "set by the gateway"),
    ("cf-access-token", "set by the gateway"),
    ("Host", "set by the gateway"),
    ("X_Real_IP", "'_'"),
    ("Proxy", "never forwarded"),
    ("Connection", "hop-by-hop"),
    ("Content-Length", "framing"),
    ("Authorization", "not a header the gateway strips"),
    ('"X Real IP"', "not a header name"),
])
def test_check_refuses_what_cannot_be_kept(tmp_path, name, why):
    text = APP.format(tmp=tmp_path, names=f"X-Real-IP, {name}")
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    line = text.splitlines()[7]
    assert len(errs) == 1 and errs[0][0] == 8, out
    assert errs[0][1] == line.index(name) + 1, out
    assert why in errs[0][2] and "keep_client_headers" in errs[0][2], out


def test_check_accepts_spoofable_names(tmp_path):
    p = write(tmp_path, APP.format(tmp=tmp_path, names="X-Real-IP, x-http-method-override, "
                                                       "CF-Connecting-IP, X-Forwarded-Port"))
    rc, out = check(p)
    assert rc == 0, out
