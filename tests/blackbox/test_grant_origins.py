"""Grants and redirects go only to an origin the gateway serves (issue 10, finding 1; SPEC.md §6).

The attack: an app whose host pattern names no port matches every port of its name. Someone who
can listen on another port of that name sends a victim (signed in to the org) a login link naming
his port, with his own binding tag; the gateway used to send the victim's grant there, and the
attacker redeemed it with `Host: app:<his port>` and his binding cookie. Now a login link, a
`redirect_url` and a grant's redemption are judged by the origin (scheme, host, port) of the
gateway's listeners' public addresses: another port is not one, whatever a Host header says.
Tried at the HTTP level with every spelling of the port, and in Chromium."""

import json
import re
import socket
from urllib.parse import quote

import pytest

from browser import (Client, browser, console_code, form_fields, have_browser,  # noqa: F401
                     login_config, otp_idp, qs)
from harness import Origin, free_port

pytestmark = pytest.mark.timeout(120)


def files_app(name, domains):
    """A PIN app whose host pattern names no port: it matches every port of its name."""
    return {"name": name, "domains": domains, "origin": "echo",
            "policies": [{"name": f"{name}-people", "decision": "allow",
                          "include": [{"email_domain": "example.com"}]}]}


@pytest.fixture
def gw(latchd):
    """latchd on two ports (p1: the auth domain, p2: a second listener of its own), apps
    files.localhost and *.apps.localhost (no port in their patterns), PIN sign-in; and an
    "attacker" origin listening on another port of the same names (recording what it gets)."""
    p1, p2 = free_port(), free_port()
    evil = Origin()
    cfg = login_config(p1, [otp_idp()], [files_app("files", ["files.localhost"]),
                                         files_app("wild", ["*.apps.localhost"])])
    cfg["listen"] = [{"address": f"127.0.0.1:{p1}"}, {"address": f"127.0.0.1:{p2}"}]
    d = latchd(cfg, port=p1, extra_ports=[p2])

    class G:
        pass
    g = G()
    g.d, g.p1, g.p2, g.evil = d, p1, p2, evil
    g.auth = f"http://auth.localhost:{p1}"
    yield g
    evil.close()


def sign_in(g, cl, email, host):
    """PIN sign-in through the app at `host` (host:port): the org session and the app cookie."""
    r, chain = cl.follow(f"http://{host}/")
    assert r.status == 200 and "Sign in with your email" in r.text, (r, chain)
    csrf = form_fields(r.text)["csrf"]
    n = len(re.findall(f"one-time PIN for {re.escape(email)} ", g.d.stderr()))
    cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
    code = console_code(g.d, email, after=n)
    r = cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and r.location.startswith(f"http://{host}/cdn-cgi/access/authorized?grant="), r
    final, chain = cl.follow(r.location)
    assert final.status == 200 and json.loads(final.text)["headers"]["cf-access-authenticated-user-email"] == email
    assert cl.get_cookie("auth.localhost", "CF_Authorization")


def attacker_binding(g, host):
    """The attacker starts a login of his own at the app: his binding cookie and its tag."""
    attacker = Client()
    r = attacker.get(f"http://{host}/")
    assert r.status == 302 and "bind=" in r.location, r
    return attacker, qs(r.location)["bind"]


def evil_saw_nothing(g):
    assert g.evil.connections == 0 and not g.evil.requests, g.evil.requests


def test_login_link_to_another_port_sends_no_grant(gw):
    """A victim signed in to the org opens the attacker's login link naming another port of the
    app's name, in every spelling: no grant is made or sent anywhere; the same link naming the
    gateway's own ports works."""
    g = gw
    victim = Client()
    sign_in(g, victim, "vera@example.com", f"files.localhost:{g.p1}")
    _, tag = attacker_binding(g, f"files.localhost:{g.p1}")
    e = g.evil.port
    for target in [f"files.localhost:{e}", f"FILES.localhost:{e}", f"files.localhost.:{e}",
                   f"files.localhost:0{e}", f"files.localhost:{e}.", "files.localhost",
                   "files.localhost:80", "files.localhost:443", f"x.apps.localhost:{e}",
                   f"files.localhost:{g.p1}@files.localhost:{e}", f"files.localhost%3A{e}",
                   f"127.0.0.1:{e}", f"localhost:{e}"]:
        r = victim.get(f"{g.auth}/cdn-cgi/access/login/{target}?redirect_url=%2F&bind={tag}")
        assert r.status in (400, 404) and r.location is None, (target, r)
        assert "authorized?grant=" not in r.text, (target, r)
    evil_saw_nothing(g)
    events = [json.loads(l) for l in g.d.auth_log.read_text().splitlines()]
    assert any(e["event"] == "login" and not e["allowed"] and "does not serve" in e["reason"] for e in events)
    # the gateway's own ports: a grant, to exactly that origin
    for port in (g.p1, g.p2):
        r = victim.get(f"{g.auth}/cdn-cgi/access/login/files.localhost:{port}?redirect_url=%2F")
        assert r.status == 302 and r.location.startswith(
            f"http://files.localhost:{port}/cdn-cgi/access/authorized?grant="), (port, r)


def test_redirect_url_to_another_port_refused(gw):
    """redirect_url naming another port (or scheme) of an app's host name is refused; one of
    the gateway's own origins is accepted."""
    g = gw
    victim = Client()
    sign_in(g, victim, "rita@example.com", f"files.localhost:{g.p1}")
    e = g.evil.port
    login = f"{g.auth}/cdn-cgi/access/login/files.localhost:{g.p1}?redirect_url="
    for bad in [f"http://files.localhost:{e}/x", f"http://files.localhost:0{e}/x",
                f"http://x.apps.localhost:{e}/", f"https://files.localhost:{g.p1}/x",
                "http://files.localhost/x", "https://files.localhost/x",
                f"http://FILES.LOCALHOST.:{e}/x", f"http://files.localhost:{e}"]:
        r = victim.get(login + quote(bad, safe=""))
        assert r.status == 400 and r.location is None, (bad, r)
    for good in [f"http://files.localhost:{g.p2}/x", f"http://x.apps.localhost:{g.p1}/y"]:
        r = victim.get(login + quote(good, safe=""))
        assert r.status == 302 and "authorized?grant=" in r.location, (good, r)
        final, _ = victim.follow(r.location)
        assert final.url == good, (good, final)
    evil_saw_nothing(g)


def test_grant_redeemed_only_at_its_origin(gw):
    """A grant made for files.localhost:p1 is refused (and spent) through the gateway's other
    listener, through a Host naming another port, and on another host of a wildcard app; the
    app host's login link names the port the request reached, never the Host's claim."""
    g = gw
    victim = Client()
    sign_in(g, victim, "gail@example.com", f"files.localhost:{g.p1}")

    def fresh_grant(host):
        r = victim.get(f"{g.auth}/cdn-cgi/access/login/{host}?redirect_url=%2F")
        assert r.status == 302 and "authorized?grant=" in r.location, r
        return qs(r.location)["grant"]

    def redeem(port, host, grant):
        s = socket.create_connection(("127.0.0.1", port))
        cookie = victim.cookie_header(host.split(":")[0], "/cdn-cgi/access/authorized")
        s.sendall(f"GET /cdn-cgi/access/authorized?grant={grant} HTTP/1.1\r\nHost: {host}\r\n"
                  f"Cookie: {cookie}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        return data.decode("latin-1")

    e = g.evil.port
    cases = [(g.p2, f"files.localhost:{g.p1}"),   # the other listener, Host claiming p1
             (g.p2, f"files.localhost:{g.p2}"),   # the other listener's own origin
             (g.p1, f"b.apps.localhost:{g.p1}")]  # another host of the wildcard app
    for port, host in cases:
        grant = fresh_grant(f"a.apps.localhost:{g.p1}" if "apps" in host else f"files.localhost:{g.p1}")
        out = redeem(port, host, grant)
        assert out.startswith("HTTP/1.1 400") and "CF_Authorization=ey" not in out, (port, host, out[:300])
        # spent: not even its own origin takes it now
        out = redeem(g.p1, host.replace(str(g.p2), str(g.p1)).replace("b.apps", "a.apps"), grant)
        assert out.startswith("HTTP/1.1 400"), out[:300]
    # a Host claiming another port reaches p1: the login link names p1, where it arrived
    r = Client().get(f"http://files.localhost:{g.p1}/x", headers=[("Host", f"files.localhost:{e}")])
    assert r.status == 302 and f"/login/files.localhost:{g.p1}?" in r.location, r
    assert "bind=" not in r.location, r  # the browser is not where the grant will go: no binding
    evil_saw_nothing(g)


@pytest.mark.skipif(not have_browser(), reason="chromium or playwright-core missing")
def test_grant_theft_across_ports_in_a_real_browser(gw, browser):
    """Chromium, signed in to the org, follows the attacker's link naming his port: the page
    says no application is served there, his server never hears from the browser, and the
    person still reaches the app."""
    g = gw
    url = f"http://files.localhost:{g.p1}/docs"
    browser.goto(url)
    browser.fill("input[name=email]", "pia@example.com")
    browser.submit()
    code = console_code(g.d, "pia@example.com")
    browser.fill("input[name=code]", code)
    r = browser.submit("form:first-of-type button[type=submit]")
    assert r["url"] == url, r
    _, tag = attacker_binding(g, f"files.localhost:{g.p1}")
    r = browser.goto(f"{g.auth}/cdn-cgi/access/login/files.localhost:{g.evil.port}"
                     f"?redirect_url=%2F&bind={tag}")
    assert r["status"] == 404 and "No application is served" in browser.page()["text"], r
    assert all(g.evil.port != int(h["url"].split("/")[2].split(":")[1]) for h in r["chain"]), r
    browser.screenshot("grant-other-port-refused")
    r = browser.goto(f"{g.auth}/cdn-cgi/access/login/files.localhost:{g.p1}"
                     f"?redirect_url={quote(f'http://files.localhost:{g.evil.port}/', safe='')}")
    assert r["status"] == 400, r
    evil_saw_nothing(g)
    r = browser.goto(url)
    assert r["url"] == url and "pia@example.com" in browser.page()["text"], r


def test_listener_behind_a_tls_terminator(latchd):
    """A plain listener declared `public: {scheme: https, port: 443}` (a TLS terminator in
    front): the auth URL is https, login links and grants name https on 443, the origin hears
    X-Forwarded-Proto: https, and cookies are Secure, __Host- for the login's own."""
    port = free_port()
    cfg = login_config(port, [otp_idp()], [files_app("files", ["files.example.com"])],
                       auth_domain="auth.example.com")
    cfg["listen"] = [{"address": f"127.0.0.1:{port}", "public": {"scheme": "https", "port": 443}}]
    cfg["apps"].append({"name": "open", "domains": ["open.example.com"], "origin": "echo",
                        "policies": [{"name": "all", "decision": "bypass", "include": [{"everyone": {}}]}]})
    d = latchd(cfg, port=port)
    cl = Client()
    r = cl.get(f"http://127.0.0.1:{port}/x", headers=[("Host", "files.example.com")])
    assert r.status == 302 and r.location.startswith(
        "https://auth.example.com/cdn-cgi/access/login/files.example.com?"), r
    bind = [l for l in r.all("set-cookie") if l.startswith("__Host-latch_bind_")]
    assert bind and "Secure" in bind[0] and "Path=/;" in bind[0], r.all("set-cookie")
    r = cl.get(f"http://127.0.0.1:{port}/", headers=[("Host", "open.example.com")])
    assert json.loads(r.text)["headers"]["x-forwarded-proto"] == "https", r.text
    r = cl.get(f"http://127.0.0.1:{port}/cdn-cgi/access/login/files.example.com:8443?redirect_url=%2F",
               headers=[("Host", "auth.example.com")])
    assert r.status == 404, r
    r = cl.get(f"http://127.0.0.1:{port}/cdn-cgi/access/login/files.example.com?redirect_url=%2F",
               headers=[("Host", "auth.example.com")])
    assert r.status == 302 and r.location == "/cdn-cgi/access/start?idp=email-code", r
    flow = [l for l in r.all("set-cookie") if "latch_flow" in l]
    assert flow and flow[0].startswith("__Host-latch_flow=") and "Secure" in flow[0], r.all("set-cookie")


def test_origin_hears_the_origin_not_the_hosts_port(latchd):
    """A Host (or an absolute-form target) claiming another port of the name: the origin's Host
    and X-Forwarded-Host name the origin the request reached, so links an origin builds from
    them (a password reset) never point at the other port."""
    port = free_port()
    d = latchd({"apps": [{"name": "pub", "domains": ["pub.localhost"], "origin": "echo",
                          "policies": [{"name": "all", "decision": "bypass",
                                        "include": [{"everyone": {}}]}]}]}, port=port)
    for target, host in (("/", "pub.localhost:9999"), ("http://pub.localhost:7777/", f"pub.localhost:{port}"),
                         ("/", "pub.localhost"), ("/", f"PUB.localhost.:{port}")):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head, body = data.decode("latin-1").split("\r\n\r\n", 1)
        assert head.startswith("HTTP/1.1 200"), head
        h = json.loads(body)["headers"]
        assert h["host"] == f"pub.localhost:{port}" and h["x-forwarded-host"] == f"pub.localhost:{port}", (target, host, h)


def test_no_grant_in_clear_from_an_https_gateway(latchd):
    """A gateway reached over https that also serves plain http (port 80 beside 443): a login
    link naming the http origin would send the grant across the network in clear. Refused, but
    on this machine's own names (loopback)."""
    p1, p2 = free_port(), free_port()
    apps = [files_app("files", ["files.example.com", "files.localhost"])]
    cfg = login_config(p1, [otp_idp()], apps, auth_domain="auth.example.com")
    cfg["listen"] = [{"address": f"127.0.0.1:{p1}", "public": {"scheme": "https", "port": 443}},
                     {"address": f"127.0.0.1:{p2}", "public": {"scheme": "http", "port": 80}}]
    d = latchd(cfg, port=p1, extra_ports=[p2])

    def login(target):
        return Client().get(f"http://127.0.0.1:{p1}/cdn-cgi/access/login/{target}?redirect_url=%2F",
                            headers=[("Host", "auth.example.com")])
    r = login("files.example.com:80")
    assert r.status == 404 and r.location is None, r
    assert "plain http address of an https gateway" in d.auth_log.read_text()
    r = login("files.example.com")  # https:443
    assert r.status == 302 and "/cdn-cgi/access/start" in r.location, r
    r = login("files.localhost:80")  # this machine's own name: allowed in clear
    assert r.status == 302 and "/cdn-cgi/access/start" in r.location, r
