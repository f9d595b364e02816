"""Attacks on the browser login (issue 4, SPEC.md §5, §6), at the HTTP level with a cookie jar
we control: the open-redirect corpus, forged / replayed / cookieless OIDC callbacks, replayed
grants, session fixation, PIN guessing and reuse, CSRF on the PIN forms, cookie attributes on
plain loopback and behind TLS, and no token in any page or log line."""

import json
import re
import subprocess
import time
from urllib.parse import quote

import pytest

import authkit as ak

from browser import (TOKEN_RE, Client, console_code, form_fields, idp_factory,  # noqa: F401
                     jwt_claims, login_config, oidc_login, otp_idp, parse_set_cookie, person_app, qs)
from harness import free_port

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def gw(latchd, idp_factory):
    """latchd with the corp provider and the PIN (console); apps wiki and other (both ways to
    sign in) and pin (PIN only). Returns an object with d, idp, port, url(host, path)."""
    port = free_port()
    idp = idp_factory(port)
    apps = [person_app("wiki", "wiki.localhost", port),
            person_app("other", "other.localhost", port, session="30m"),
            person_app("pin", "pin.localhost", port, allowed_idps=["email-code"])]
    d = latchd(login_config(port, [idp.idp_config("corp"), otp_idp()], apps, session_duration="2h"),
               port=port)

    class G:
        pass
    g = G()
    g.d, g.idp, g.port = d, idp, port
    g.auth = f"http://auth.localhost:{port}"
    g.url = lambda host, path="/": f"http://{host}.localhost:{port}{path}"
    return g


def pins_sent(d, email):
    return len(re.findall(r"one-time PIN for " + re.escape(email) + r" ", d.stderr()))


def otp_start(cl, g, email, path="/"):
    """Opens the PIN app, asks for a code for `email`. Returns (csrf, code page response, code)."""
    r, chain = cl.follow(g.url("pin", path))
    assert r.status == 200 and "Sign in with your email" in r.text, (r, chain)
    csrf = form_fields(r.text)["csrf"]
    n = pins_sent(g.d, email)
    p = cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
    assert p.status == 200 and "Check your email" in p.text, p
    return csrf, p, console_code(g.d, email, after=n)


def otp_login(cl, g, email, path="/"):
    csrf, _, code = otp_start(cl, g, email, path)
    r = cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
    final, chain = cl.follow(r.location)
    assert final.status == 200, (final, chain)
    return [r] + chain


# --------------------------------------------------------------------------------------------
# redirect_url

def redirect_corpus(port):
    h = f"wiki.localhost:{port}"
    a = f"auth.localhost:{port}"
    return [
        "//evil.example", "//evil.example/", "///evil.example", "////evil.example",
        "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "\\/evil.example",
        "/%09/evil.example", "/\t/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example",
        "/%5Cevil.example", "/%5cevil.example", "/%2F/evil.example", "/%2f%2fevil.example",
        "%2F%2Fevil.example", "/ /evil.example", "/\x00/evil",
        "https://evil-example.com", "https://evil-example.com/", "http://evil.example/x",
        "https://user@evil.example", "https://user:pw@evil.example/", f"https://{h}@evil.example/",
        f"http://{a}@evil.example", f"http://{h}@evil.example/", f"http://evil.example#@{h}",
        f"http://evil.example?@{h}/", f"http://evil.example\\@{h}/", f"http://{h}.evil.example/",
        f"http://{h}%2F@evil.example/", f"http://{h}%40evil.example/",
        "javascript:alert(1)", "JavaScript:alert(1)", "javascript://%0aalert(1)",
        " javascript:alert(1)", "\tjavascript:alert(1)", "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)", "http:evil.example", "http:/evil.example", "https:\\\\evil.example",
        "http:\\\\evil.example", "ftp://evil.example/", "evil.example", "evil.example/path",
        "", " ", " //evil.example", "\r\n//evil.example", "\x7f//evil.example", "http://", "https://", "http:///evil.example",
        f"http://127.0.0.1:{port}/", "http://localhost/", f"http://{a}/cdn-cgi/access/logout",
        "/\u2215\u2215evil.example", "\u3002evil.example",
    ]


# Escaped text stays escaped in the final Location, so these stay on the app host.
GOOD_REDIRECTS = ["/", "/a/b?x=1&y=2", "/%7Euser/", "/x?next=%2Fhome", "/a?b=%22", "/%20/evil.example",
                  "/%E2%88%95evil.example"]


# A value that is not even a well-formed query parameter (a control character once decoded).
MALFORMED_REDIRECTS = ["/\t/evil.example", "/\x00/evil", "\tjavascript:alert(1)", "/\r\n/evil.example",
                       "\x7f//evil.example",
                       "\r\n//evil.example"]


def test_malformed_redirect_url_is_refused_not_defaulted(gw):
    """A redirect_url that cannot be decoded (control characters) must be refused like every
    other bad value, not silently replaced by "/" (redirect.h: controls are refused)."""
    cl = Client()
    got = []
    for target in MALFORMED_REDIRECTS:
        url = f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url={quote(target, safe='')}"
        r = cl.get(url, cookies=False)
        assert "evil" not in (r.location or "")
        if r.status != 400:
            got.append((target, r.status))
    assert not got, f"malformed redirect_url values not refused (the login went on with '/'): {got}"


def test_open_redirect_corpus_refused(gw):
    cl = Client()
    bad = []
    for target in [t for t in redirect_corpus(gw.port) if t not in MALFORMED_REDIRECTS]:
        url = f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url={quote(target, safe='')}"
        r = cl.get(url, cookies=False)
        if r.status != 400 or r.location is not None or r.header("set-cookie"):
            bad.append((target, r.status, r.location))
        assert "evil" not in (r.location or "")
    assert not bad, f"accepted redirect_url values: {bad}"
    # the refusal names no attacker URL as a link
    r = cl.get(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url=%2F%2Fevil.example",
               cookies=False)
    assert r.status == 400 and "Invalid return address" in r.text and "href=\"//evil" not in r.text
    # acceptable ones start a flow
    for target in GOOD_REDIRECTS + [gw.url("wiki", "/x"), gw.url("other", "/y?z=1")]:
        r = cl.get(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url={quote(target, safe='')}",
                   cookies=False)
        assert r.status == 200 and "Continue with corp" in r.text, (target, r)


@pytest.mark.parametrize("path", ["/My%20Docs/", "/search?q=a%20b", "/caf%C3%A9", "/r%C3%A9sum%C3%A9?x=%E2%9C%93"])
def test_login_from_a_path_with_escapes(gw, path):
    """The app's own login redirect must work for ordinary paths holding escaped spaces or UTF-8
    (file names, wiki pages, search queries): the login page, not "Invalid return address"."""
    cl = Client()
    r, chain = cl.follow(gw.url("pin", path))
    assert chain[0].status == 302 and "/cdn-cgi/access/login/" in chain[0].location
    assert r.status == 200 and "Sign in with your email" in r.text, (path, [(x.status, x.url) for x in chain])
    final = otp_login(cl, gw, "esc@example.com", path)
    assert final[-1].url == gw.url("pin", path), [(x.status, x.url, x.location) for x in final]


def test_open_redirect_refused_with_org_session(gw):
    """With a live org session the login endpoint issues grants without a page: the same
    redirect_url checks still apply, before any grant."""
    cl = Client()
    otp_login(cl, gw, "amy@example.com")
    assert cl.get_cookie("auth.localhost", "CF_Authorization")
    for target in redirect_corpus(gw.port):
        url = f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url={quote(target, safe='')}"
        r = cl.get(url)
        if target in MALFORMED_REDIRECTS and r.status == 302:
            # (see test_malformed_redirect_url_is_refused_not_defaulted) at least never elsewhere
            r2 = cl.get(r.location)
            assert r2.status == 302 and r2.location == "/", (target, r2)
            continue
        assert r.status == 400 and r.location is None, (target, r)
    # a good one goes straight to a grant. Made from a direct visit (no binding from the app
    # host), the grant sends this browser round once more, bound this time, and then returns
    # to that very path, as sent
    for target in GOOD_REDIRECTS:
        r = cl.get(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url={quote(target, safe='')}")
        assert r.status == 302 and r.location.startswith(gw.url("wiki", "/cdn-cgi/access/authorized?grant=")), r
        r2 = cl.get(r.location)
        assert r2.status == 302 and "CF_Authorization=" not in " ".join(r2.all("set-cookie")), r2
        assert r2.location.startswith(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?"), r2
        assert qs(r2.location)["redirect_url"] == target and re.fullmatch(r"[0-9a-f]{32}", qs(r2.location)["bind"])
        r3 = cl.get(r2.location)
        assert r3.status == 302 and r3.location.startswith(gw.url("wiki", "/cdn-cgi/access/authorized?grant=")), r3
        r4 = cl.get(r3.location)
        assert r4.status == 302 and r4.location == target, (target, r4)
        assert "CF_Authorization=" in r4.header("set-cookie"), r4
    # the login host is an app host, never anything else (unknown host: 404, no flow)
    r = cl.get(f"{gw.auth}/cdn-cgi/access/login/evil.example?redirect_url=%2F")
    assert r.status == 404 and r.location is None, r


# --------------------------------------------------------------------------------------------
# the OIDC callback

def test_forged_state_and_replayed_callback(gw):
    cl = Client()
    cb, _ = oidc_login(cl, gw.url("wiki", "/p"), "alice", stop_at_callback=True)
    q = qs(cb)
    assert re.fullmatch(r"[0-9a-f]{32}", q["state"]), q
    base = f"{gw.auth}/cdn-cgi/access/callback"
    forged = [f"{base}?code={q['code']}&state={'0' * 32}",
              f"{base}?code={q['code']}&state={q['state'][:-1]}",
              f"{base}?code={q['code']}&state={q['state']}x",
              f"{base}?code={q['code']}&state=",
              f"{base}?code={q['code']}",
              f"{base}?code={q['code']}&state={q['state'].upper()}"]
    for u in forged:
        r = cl.get(u)
        assert r.status == 400 and r.location is None, (u, r)
        assert not cl.get_cookie("auth.localhost", "CF_Authorization"), u
    # a callback from a browser that holds no flow cookie (or another browser's flow)
    stranger = Client()
    r = stranger.get(cb)
    assert r.status == 400 and r.location is None and not r.header("set-cookie"), r
    other = Client()
    other.follow(gw.url("wiki", "/"))  # its own flow, another state
    assert other.get_cookie("auth.localhost", "latch_flow")
    r = other.get(cb)
    assert r.status == 400 and r.location is None, r
    assert not other.get_cookie("auth.localhost", "CF_Authorization")
    # the genuine callback still works once...
    r = cl.get(cb)
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, (r, gw.idp.entries()[-3:])
    org = cl.get_cookie("auth.localhost", "CF_Authorization")
    assert org and jwt_claims(org)["type"] == "org"
    # ...and never twice, even with the flow cookie put back
    flow = qs(cb)  # noqa
    cl2 = Client()
    for (h, n), (v, p, _) in cl.jar.items():
        cl2.jar[(h, n)] = (v, p, None)
    r = cl.get(cb)
    assert r.status == 400 and r.location is None, r
    ev = [json.loads(l) for l in gw.d.auth_log.read_text().splitlines()]
    assert sum(1 for e in ev if e["event"] == "login" and not e["allowed"]) >= len(forged) + 2, ev


def test_replayed_state_in_a_new_flow(gw):
    """A state (and code) captured from one login is worthless in the next one."""
    cl = Client()
    cb, _ = oidc_login(cl, gw.url("wiki", "/"), "alice", stop_at_callback=True)
    # the same browser starts again: a new flow, a new state
    cl.follow(gw.url("wiki", "/"))
    r = cl.get(cb)
    assert r.status == 400 and r.location is None, r
    assert not cl.get_cookie("auth.localhost", "CF_Authorization")


def test_callback_error_from_provider(gw):
    cl = Client()
    cb, _ = oidc_login(cl, gw.url("wiki", "/"), "alice", stop_at_callback=True)
    state = qs(cb)["state"]
    r = cl.get(f"{gw.auth}/cdn-cgi/access/callback?error=access_denied&state={state}")
    assert r.status == 403 and "did not sign you in" in r.text, r
    assert not cl.get_cookie("auth.localhost", "CF_Authorization")


# --------------------------------------------------------------------------------------------
# grants

def test_grant_single_use_and_bound_to_host(gw):
    cl = Client()
    cb, _ = oidc_login(cl, gw.url("wiki", "/here"), "alice", stop_at_callback=True)
    r = cl.get(cb)
    grant_url = r.location
    assert grant_url.startswith(gw.url("wiki", "/cdn-cgi/access/authorized?grant=")), r
    grant = qs(grant_url)["grant"]
    assert re.fullmatch(r"[0-9a-f]{32}", grant)
    # redeemed on another app's host: refused (and it is spent)
    thief = Client()
    r = thief.get(gw.url("other", f"/cdn-cgi/access/authorized?grant={grant}"))
    assert r.status == 400 and not r.header("set-cookie"), r
    r = cl.get(grant_url)
    assert r.status == 400 and not r.header("set-cookie"), r
    # a fresh grant (from the app host, bound to this browser): once, then never again
    r = cl.get(gw.url("wiki", "/here"))
    assert r.status == 302 and "/cdn-cgi/access/login/" in r.location and "bind=" in r.location, r
    r = cl.get(r.location)
    assert r.status == 302 and "authorized?grant=" in r.location, r
    g2 = r.location
    r = cl.get(g2)
    assert r.status == 302 and r.location == "/here" and "CF_Authorization=" in r.header("set-cookie"), r
    r = Client().get(g2)
    assert r.status == 400 and not r.header("set-cookie"), r
    r = cl.get(g2)
    assert r.status == 400, r
    for bad in ["", "0" * 32, "zz" * 16, grant.upper(), grant + "0", "../" + grant]:
        r = Client().get(gw.url("wiki", f"/cdn-cgi/access/authorized?grant={quote(bad)}"))
        assert r.status == 400 and not r.header("set-cookie"), (bad, r)


def attacker_grant(gw, attacker, bound):
    """The attacker signs in as himself (PIN), then makes one more grant and keeps its link
    instead of redeeming it: `bound` through the app host (bound to his browser), else by a
    direct visit to the login URL (bound to nothing)."""
    if not attacker.get_cookie("auth.localhost", "CF_Authorization"):
        otp_login(attacker, gw, "mallory@example.com", "/inbox")
    attacker.jar.pop(("pin.localhost", "CF_Authorization"), None)
    if bound:
        r = attacker.get(gw.url("pin", "/inbox"))
        assert r.status == 302 and "bind=" in r.location, r
        r = attacker.get(r.location)
    else:
        r = attacker.get(f"{gw.auth}/cdn-cgi/access/login/pin.localhost:{gw.port}?redirect_url=%2Finbox")
    assert r.status == 302 and r.location.startswith(gw.url("pin", "/cdn-cgi/access/authorized?grant=")), r
    return r.location


def no_app_cookie(r, victim):
    assert "CF_Authorization=" not in " ".join(r.all("set-cookie")), r
    assert victim.get_cookie("pin.localhost", "CF_Authorization") is None


def test_login_csrf_grant_link_from_another_browser(gw):
    """Login CSRF: an attacker signs in as himself, stops before redeeming his grant and sends
    the link to a victim, whose browser would then act as the attacker (and, say, save her
    documents into his account). The link never plants his identity, whether the grant was
    bound to his browser or made through a direct visit to the login URL; it is spent, and the
    victim signs in as herself; a browser that keeps no binding gets an error, not a loop."""
    attacker = Client()

    def sent_to_sign_in(r, victim):
        assert r.status == 302, r
        assert r.location.startswith(f"{gw.auth}/cdn-cgi/access/login/pin.localhost:{gw.port}?"), r
        assert qs(r.location)["redirect_url"] == "/inbox" and qs(r.location)["again"] == "1", r.location
        no_app_cookie(r, victim)

    # a grant bound to the attacker's browser, opened by a browser holding no binding
    for own_binding in (False, True):
        link = attacker_grant(gw, attacker, bound=True)
        victim = Client()
        if own_binding:  # it came from the app: a login of its own under way
            victim.follow(gw.url("pin", "/mine"))
            assert [n for (h, n) in victim.jar if h == "pin.localhost" and n.startswith("latch_bind_")]
        r = victim.get(link)
        sent_to_sign_in(r, victim)
        final, chain = victim.follow(r.location)
        assert final.status == 200 and "Sign in with your email" in final.text, (final, chain)
        no_app_cookie(final, victim)
        assert attacker.get(link).status == 400  # spent
    # a grant bound to nothing (the login URL visited directly), in a fresh browser
    link = attacker_grant(gw, attacker, bound=False)
    victim = Client()
    r = victim.get(link)
    sent_to_sign_in(r, victim)
    final, _ = victim.follow(r.location)
    assert final.status == 200 and "Sign in with your email" in final.text, final
    no_app_cookie(final, victim)
    # a victim with her own session who opens the link ends up in the app as herself
    victim = Client()
    otp_login(victim, gw, "vic@example.com")
    victim.jar.pop(("pin.localhost", "CF_Authorization"))
    link = attacker_grant(gw, attacker, bound=False)
    final, chain = victim.follow(link)
    assert final.status == 200, (final, [(x.status, x.url) for x in chain])
    me = victim.get(gw.url("pin", "/cdn-cgi/access/get-identity"), accept="application/json")
    assert me.status == 200 and me.json()["email"] == "vic@example.com", me
    assert jwt_claims(victim.get_cookie("pin.localhost", "CF_Authorization"))["email"] == "vic@example.com"
    # ... and, keeping no binding cookie (cookies off), an error after one more try, not a loop
    victim.jar.pop(("pin.localhost", "CF_Authorization"))
    link = attacker_grant(gw, attacker, bound=True)
    r = victim.get(link)
    sent_to_sign_in(r, victim)
    for k in [k for k in victim.jar if k[1].startswith("latch_bind_")]:
        del victim.jar[k]
    r = victim.get(r.location)  # single sign-on: straight to a grant, bound to this browser
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
    r = victim.get(r.location)
    assert r.status == 400 and "another browser" in r.text and r.location is None, r
    no_app_cookie(r, victim)
    # the security team sees each refused link
    ev = [json.loads(line) for line in gw.d.auth_log.read_text().splitlines()]
    refused = [e for e in ev if e["event"] == "login" and not e["allowed"] and e["app"] == "pin"]
    assert len([e for e in refused if e["email"] == "mallory@example.com" and
                "not started in this browser" in e["reason"]]) >= 3, refused
    assert len([e for e in refused if e["email"] == "vic@example.com" and
                "cookies are off" in e["reason"]]) == 1, refused


@pytest.mark.parametrize("first", ["a", "b"])
def test_logins_in_several_tabs(gw, first):
    """A browser restoring several tabs of an app whose cookie expired starts several logins at
    once: each has its own binding, and every tab lands, whichever grant is redeemed first."""
    cl = Client()
    otp_login(cl, gw, "tab@example.com", "/start")
    cl.jar.pop(("pin.localhost", "CF_Authorization"))
    grants = {}
    for tab in ("a", "b"):
        r = cl.get(gw.url("pin", f"/{tab}"))
        assert r.status == 302 and "bind=" in r.location, r
        r = cl.get(r.location)  # single sign-on: straight to a grant
        assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
        grants[tab] = r.location
    for tab in (first, "b" if first == "a" else "a"):
        # two logins share a binding cookie once in 16: the first redeemed then takes a detour
        # through one more (single sign-on) login
        final, chain = cl.follow(grants[tab])
        assert final.status == 200 and final.url == gw.url("pin", f"/{tab}"), (tab, chain)
        assert "CF_Authorization=" in " ".join(h for x in chain for h in x.all("set-cookie")), chain
    assert not [n for (h, n) in cl.jar if n.startswith("latch_bind_")], cl.jar.keys()


def test_own_pages_refuse_framing(gw):
    """The sign-in pages and the command line's confirmation page are never framed by another
    site (clickjacking a confirmation would hand a token to whoever made the link)."""
    cl = Client()
    r, chain = cl.follow(gw.url("wiki", "/"))
    key = "A" * 43
    pages = chain + [cl.get(f"{gw.auth}/cdn-cgi/access/cli?host=wiki.localhost:{gw.port}&key={key}&n=AAAAAAAAAAAAAAAAAAAAAA")]
    for x in pages:
        assert x.header("x-frame-options") == "DENY", x
        assert "frame-ancestors 'none'" in (x.header("content-security-policy") or ""), x
        assert x.header("referrer-policy") == "same-origin", x


# --------------------------------------------------------------------------------------------
# session fixation and revocation

def test_session_fixation(gw):
    attacker = Client()
    attacker.follow(gw.url("pin", "/"))
    planted_flow = attacker.get_cookie("auth.localhost", "latch_flow")
    assert planted_flow
    victim = Client()
    fake = "eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoib3JnIn0.c2ln"
    victim.set_cookie("auth.localhost", "CF_Authorization", fake)
    victim.set_cookie("pin.localhost", "CF_Authorization", fake)
    victim.set_cookie("auth.localhost", "latch_flow", planted_flow, "/cdn-cgi/access/")
    # a new flow is started for the victim: the planted one is replaced
    r, _ = victim.follow(gw.url("pin", "/"))
    assert r.status == 200 and victim.get_cookie("auth.localhost", "latch_flow") not in (None, planted_flow)
    otp_login(victim, gw, "vic@example.com")
    org = victim.get_cookie("auth.localhost", "CF_Authorization")
    app = victim.get_cookie("pin.localhost", "CF_Authorization")
    assert org != fake and app != fake
    n1 = jwt_claims(org)["identity_nonce"]
    assert planted_flow not in (n1, jwt_claims(app)["identity_nonce"])
    assert jwt_claims(app)["identity_nonce"] == n1
    # the attacker's flow id gives the attacker nothing
    r = attacker.get(f"{gw.auth}/cdn-cgi/access/login/pin.localhost:{gw.port}?redirect_url=%2F")
    assert r.status == 302 and "/cdn-cgi/access/start" in r.location, r
    assert not attacker.get_cookie("auth.localhost", "CF_Authorization")
    # the same person signing in again gets another session id
    again = Client()
    otp_login(again, gw, "vic@example.com")
    n2 = jwt_claims(again.get_cookie("auth.localhost", "CF_Authorization"))["identity_nonce"]
    assert n2 != n1 and re.fullmatch(r"[0-9a-f]{32}", n2)


def test_logout_sent_by_another_site_asks_first(gw):
    """Logout CSRF: any page could make a visitor's browser GET the logout URL (a link, an
    image) and end their session, everywhere. A browser says which site started a request
    (Sec-Fetch-Site); sent by another site, the person is asked, with a form that posts back;
    a POST from another site's page (its Origin) is refused. The session survives both."""
    cl = Client()
    otp_login(cl, gw, "lou@example.com", "/start")
    org = cl.get_cookie("auth.localhost", "CF_Authorization")
    app = cl.get_cookie("pin.localhost", "CF_Authorization")

    def alive():
        r = Client().get(gw.url("pin", "/"), headers=[("cf-access-token", app)], accept="application/json")
        return r.status == 200 and Client().get(f"{gw.auth}/cdn-cgi/access/get-identity",
                                                headers=[("Cookie", f"CF_Authorization={org}")],
                                                cookies=False).status == 200

    forged = "?ended=" + "0" * 32  # the app host's proof that it just ended the session: forged
    for url in (gw.url("pin", "/cdn-cgi/access/logout"), f"{gw.auth}/cdn-cgi/access/logout",
                f"{gw.auth}/cdn-cgi/access/logout{forged}"):
        r = cl.get(url, headers=[("Sec-Fetch-Site", "cross-site")])
        assert r.status == 200 and "Sign out?" in r.text and "lou@example.com" in r.text, r
        assert '<form method="post" action="/cdn-cgi/access/logout">' in r.text, r.text
        assert not r.all("set-cookie"), r
        url = url.split("?")[0]
        origin = url.split("/cdn-cgi/")[0]
        for evil in ("http://evil.example", origin.replace("pin.", "wiki.").replace("auth.", "wiki.")):
            r = cl.post(url, {}, headers=[("Origin", evil), ("Sec-Fetch-Site", "same-site")])
            assert r.status == 403 and not r.all("set-cookie"), (evil, r)
        r = cl.post(url, {}, headers=[("Origin", origin), ("Sec-Fetch-Site", "cross-site")])
        assert r.status == 403, r
        # a browser that sends no Fetch metadata: the page that sent it, by Referer or Origin
        host = origin.split("//")[1].split(":")[0]
        for ref in ("http://evil.example/page", origin.replace("pin.", "wiki.").replace("auth.", "wiki.") + "/",
                    f"http://{host}:{gw.port + 1}/", origin.replace("http:", "https:") + "/",
                    f"http://{host}.evil.example:{gw.port}/", "null"):
            hdr = ("Origin", ref) if ref == "null" else ("Referer", ref)
            r = cl.get(url, headers=[hdr])
            assert r.status == 200 and "Sign out?" in r.text and not r.all("set-cookie"), (ref, r)
            r = cl.post(url, {}, headers=[hdr])
            assert r.status == 403 and not r.all("set-cookie"), (ref, r)
    time.sleep(1.2)  # a revocation would have reached every worker by now
    assert alive(), "a logout sent by another site ended the session"
    ev = [json.loads(line) for line in gw.d.auth_log.read_text().splitlines()]
    assert not [e for e in ev if e["event"] == "logout"], ev
    # the person confirms: the form posts back from the same origin, and the session ends
    r = cl.post(gw.url("pin", "/cdn-cgi/access/logout"), {},
                headers=[("Origin", gw.url("pin", "").rstrip("/")), ("Sec-Fetch-Site", "same-origin")])
    assert r.status == 302 and r.location.startswith(f"{gw.auth}/cdn-cgi/access/logout?ended="), r
    # that redirect reaches the auth domain from another site (the app host), most often before
    # the revocation reached its worker: its proof clears the org cookie without a question
    r = cl.get(r.location, headers=[("Sec-Fetch-Site", "cross-site")])
    assert r.status == 200 and "You are signed out" in r.text, r
    assert "CF_Authorization=;" in " ".join(r.all("set-cookie")), r
    assert cl.get_cookie("auth.localhost", "CF_Authorization") is None
    assert deadline(lambda: not alive(), 3), "the confirmed logout did not end the session"
    # and the app's own link (same origin), or a typed address, ends a session without a question
    for fetch_site in ("same-origin", "none", None, "referer"):
        cl = Client()
        otp_login(cl, gw, "lou@example.com", "/start")
        app = cl.get_cookie("pin.localhost", "CF_Authorization")
        hdrs = [("Sec-Fetch-Site", fetch_site)] if fetch_site else []
        if fetch_site == "referer":  # no Fetch metadata, a page of the app itself
            hdrs = [("Referer", gw.url("pin", "/settings"))]
        r = cl.get(gw.url("pin", "/cdn-cgi/access/logout"), headers=hdrs)
        assert r.status == 302 and r.location.startswith(f"{gw.auth}/cdn-cgi/access/logout?"), (fetch_site, r)
        assert re.fullmatch(r"[0-9a-f]{32}", qs(r.location)["ended"]), r.location


def deadline(pred, timeout):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def test_logout_revokes_stolen_copies(gw):
    cl = Client()
    otp_login(cl, gw, "sam@example.com", "/start")
    org = cl.get_cookie("auth.localhost", "CF_Authorization")
    r = cl.get(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url=%2F")
    cl.follow(r.location)
    app_pin = cl.get_cookie("pin.localhost", "CF_Authorization")
    app_wiki = cl.get_cookie("wiki.localhost", "CF_Authorization")
    assert org and app_pin and app_wiki
    r, chain = cl.follow(gw.url("pin", "/cdn-cgi/access/logout"))
    assert r.status == 200 and "You are signed out" in r.text, chain
    clear = [parse_set_cookie(l) for x in chain for l in x.all("set-cookie")]
    assert all(a.get("max-age") == "0" for n, v, a in clear if n == "CF_Authorization") and len(clear) == 2
    # copies kept by a thief: the org cookie no longer signs in, the app tokens no longer admit,
    # on every worker, from the moment the logout answered (not at the next state poll)
    for _ in range(20):
        for host, tok in (("pin", app_pin), ("wiki", app_wiki)):
            r = Client().get(gw.url(host, "/"), headers=[("cf-access-token", tok)], accept="application/json")
            assert r.status == 401, (host, r)
    thief = Client()
    thief.set_cookie("auth.localhost", "CF_Authorization", org)
    r = thief.get(f"{gw.auth}/cdn-cgi/access/login/wiki.localhost:{gw.port}?redirect_url=%2F")
    assert r.status == 200 and "Continue with corp" in r.text, r
    for host, tok in (("pin", app_pin), ("wiki", app_wiki)):
        r = Client().get(gw.url(host, "/"), headers=[("Cookie", f"CF_Authorization={tok}")], cookies=False)
        assert r.status == 302 and "/cdn-cgi/access/login/" in r.location, (host, r)
        r = Client().get(gw.url(host, "/"), headers=[("cf-access-token", tok)], accept="application/json")
        assert r.status == 401, (host, r)


# --------------------------------------------------------------------------------------------
# one-time PIN

def test_otp_guessing_burns_the_code(gw):
    cl = Client()
    csrf, _, code = otp_start(cl, gw, "gus@example.com")
    wrong = [f"{(int(code) + k) % 10 ** 8:08d}" for k in range(1, 6)]
    for i, w in enumerate(wrong):
        r = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": w})
        assert r.status == 400 and r.location is None, (i, r)
        assert ("Too many wrong codes" in r.text) == (i == 4), (i, r.text)
    r = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status != 302 and r.location is None and "Ask for a new one" in r.text, r
    assert not cl.get_cookie("auth.localhost", "CF_Authorization")
    ev = [json.loads(l) for l in gw.d.auth_log.read_text().splitlines()]
    fails = [e for e in ev if e["event"] == "otp_failed" and e["email"] == "gus@example.com"]
    assert len(fails) == 5 and all(not e["allowed"] for e in fails), ev
    assert not any(e["event"] == "login" and e["email"] == "gus@example.com" for e in ev)
    # malformed codes count as misses too, and never sign in
    csrf, _, code = otp_start(cl, gw, "gus@example.com")
    for w in ["", "1234567", "123456789", "abcdefgh", code + " ", " " + code, "+" + code[1:]]:
        cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": w})
    r = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.location is None and not cl.get_cookie("auth.localhost", "CF_Authorization"), r


def test_otp_code_works_once(gw):
    cl = Client()
    csrf, _, code = otp_start(cl, gw, "una@example.com")
    flow = cl.get_cookie("auth.localhost", "latch_flow")
    r = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and "authorized?grant=" in r.location, r
    assert cl.get_cookie("auth.localhost", "latch_flow") is None  # cleared by the login
    replay = Client()
    replay.set_cookie("auth.localhost", "latch_flow", flow, "/cdn-cgi/access/")
    r = replay.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 400 and r.location is None, r
    assert not replay.get_cookie("auth.localhost", "CF_Authorization")
    # the same code in another flow is worthless too
    other = Client()
    csrf2, _, code2 = otp_start(other, gw, "una@example.com")
    if code2 != code:
        r = other.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf2, "code": code})
        assert r.status == 400 and r.location is None, r


def test_otp_csrf(gw):
    cl = Client()
    r, _ = cl.follow(gw.url("pin", "/"))
    csrf = form_fields(r.text)["csrf"]
    assert re.fullmatch(r"[0-9a-f]{32}", csrf)
    otp = f"{gw.auth}/cdn-cgi/access/otp"
    n = pins_sent(gw.d, "cat@example.com")
    for form in ({"email": "cat@example.com"}, {"csrf": "", "email": "cat@example.com"},
                 {"csrf": "0" * 32, "email": "cat@example.com"}, {"csrf": csrf[:-1], "email": "cat@example.com"},
                 {"csrf": csrf + "0", "email": "cat@example.com"}):
        r = cl.post(otp, form)
        assert r.status == 403 and "Check your email" not in r.text, (form, r)
    # the right token from another site's page
    r = cl.post(otp, {"csrf": csrf, "email": "cat@example.com"}, headers=[("Origin", "http://evil.example")])
    assert r.status == 403, r
    # a form without the browser's flow cookie (a forged cross-site post)
    r = Client().post(otp, {"csrf": csrf, "email": "cat@example.com"})
    assert r.status in (400, 403) and "Check your email" not in r.text, r
    time.sleep(0.5)
    assert pins_sent(gw.d, "cat@example.com") == n  # nothing was sent
    # the genuine form
    r = cl.post(otp, {"csrf": csrf, "email": "cat@example.com"}, headers=[("Origin", gw.auth)])
    assert r.status == 200 and "Check your email" in r.text, r
    code = console_code(gw.d, "cat@example.com", after=n)
    for form in ({"code": code}, {"csrf": "f" * 32, "code": code}):
        r = cl.post(otp, form)
        assert r.status == 403 and r.location is None, r
    r = cl.post(otp, {"csrf": csrf, "code": code})
    assert r.status == 302 and "authorized?grant=" in r.location, r


def test_otp_same_answer_for_unknown_address(gw):
    cl = Client()
    r, _ = cl.follow(gw.url("pin", "/"))
    csrf = form_fields(r.text)["csrf"]
    a = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": "ok@example.com"})
    cl2 = Client()
    r, _ = cl2.follow(gw.url("pin", "/"))
    csrf2 = form_fields(r.text)["csrf"]
    b = cl2.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf2, "email": "intruder@evil.test"})
    assert a.status == b.status == 200

    def norm(t, email, c):
        return re.sub(r"Request ID [0-9a-f]+", "", t.replace(email, "E").replace(c, "C"))
    assert norm(a.text, "ok@example.com", csrf) == norm(b.text, "intruder@evil.test", csrf2)
    time.sleep(0.3)
    assert pins_sent(gw.d, "intruder@evil.test") == 0


# --------------------------------------------------------------------------------------------
# cookies

def cookie_attrs(chain, name, host=None):
    out = []
    for r in chain:
        if host and f"//{host}" not in r.url:
            continue
        for line in r.all("set-cookie"):
            n, v, a = parse_set_cookie(line)
            if n == name:
                out.append((v, a, r.url))
    return out


def test_cookie_flags_plain_loopback(gw):
    cl = Client()
    r, chain = cl.follow(gw.url("pin", "/x"))
    chain += otp_login(cl, gw, "flo@example.com", "/x")
    flows = cookie_attrs(chain, "latch_flow")
    assert flows, chain
    for v, a, u in flows:
        assert a.get("path") == "/cdn-cgi/access/" and a.get("httponly") is True and a.get("samesite") == "Lax"
        assert "secure" not in a and a.get("max-age") in ("600", "0"), (a, u)
    org = cookie_attrs(chain, "CF_Authorization", f"auth.localhost:{gw.port}")
    app = cookie_attrs(chain, "CF_Authorization", f"pin.localhost:{gw.port}")
    assert len(org) == 1 and len(app) == 1, chain
    for (v, a, u), ttl in ((org[0], 7200), (app[0], 7200)):
        assert a.get("path") == "/" and a.get("httponly") is True and a.get("samesite") == "Lax", a
        assert "secure" not in a and "domain" not in a, a
        assert a.get("max-age") == str(ttl), a
        c = jwt_claims(v)
        assert c["exp"] - c["iat"] == ttl
    # the login binding: set by the app host's redirect (one cookie per login, named after the
    # tag in the login URL), sent to `authorized` only, cleared there (the chain holds the first
    # login's redirect and the redeeming of a second login's grant: the page was opened twice)
    binds = [(n, v, a, x) for x in chain if f"//pin.localhost:{gw.port}" in x.url
             for n, v, a in map(parse_set_cookie, x.all("set-cookie")) if n.startswith("latch_bind_")]
    tag = qs(chain[0].location)["bind"]
    assert [(n, a.get("max-age")) for n, _, a, _ in binds][0] == (f"latch_bind_{tag[0]}", "900"), binds
    assert [a.get("max-age") for _, _, a, x in binds if "/authorized?" in x.url] == ["0"], binds
    for n, v, a, x in binds:
        assert a.get("path") == "/cdn-cgi/access/authorized" and a.get("httponly") is True, a
        assert a.get("samesite") == "Lax" and "secure" not in a and "domain" not in a, a
    assert re.fullmatch(r"[0-9a-f]{32}", binds[0][1]) and binds[0][1] not in chain[0].location
    # an app with its own session duration: the cookie expires with its token
    r = cl.get(gw.url("other", "/"))
    r = cl.get(r.location)
    r2 = cl.get(r.location)
    (v, a, u), = cookie_attrs([r2], "CF_Authorization")
    assert a.get("max-age") == "1800" and jwt_claims(v)["exp"] - jwt_claims(v)["iat"] == 1800, a


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("logincert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=auth.localhost", "-addext",
                    "subjectAltName=DNS:auth.localhost,DNS:*.localhost",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def test_cookie_flags_tls(latchd, tls_cert):
    port = free_port()
    cert, key = tls_cert
    apps = [person_app("pin", "pin.localhost", port, allowed_idps=["email-code"])]
    cfg = login_config(port, [otp_idp()], apps, session_duration="1h",
                       listen=[{"address": f"127.0.0.1:{port}", "tls": {"cert": str(cert), "key": str(key)}}])
    d = latchd(cfg, port=port)
    cl = Client()
    base = f"https://pin.localhost:{port}"
    auth = f"https://auth.localhost:{port}"
    r, chain = cl.follow(base + "/")
    assert r.status == 200 and chain[0].location.startswith(f"{auth}/cdn-cgi/access/login/"), chain
    csrf = form_fields(r.text)["csrf"]
    p = cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": "tls@example.com"})
    assert p.status == 200, p
    code = console_code(d, "tls@example.com")
    r = cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and r.location.startswith(f"{base}/cdn-cgi/access/authorized?grant="), r
    final, c2 = cl.follow(r.location)
    assert final.status == 200, final
    chain += [p, r] + c2
    seen = 0
    own = set()
    for x in chain:
        for line in x.all("set-cookie"):
            n, v, a = parse_set_cookie(line)
            assert a.get("secure") is True and a.get("httponly") is True and a.get("samesite") == "Lax", line
            seen += 1
            # the gateway's own short-lived cookies are __Host- cookies: Path=/, no Domain, so
            # no sibling host can plant or overwrite one (cookie tossing)
            assert not n.startswith("latch_"), line
            if n.startswith("__Host-"):
                assert a.get("path") == "/" and "domain" not in a, line
                own.add(re.sub(r"_[0-9a-f]$", "", n))
    assert seen >= 3
    # (latch_pin: this browser signed in with a PIN, its own PIN budget from now on)
    assert own == {"__Host-latch_flow", "__Host-latch_bind", "__Host-latch_pin", "__Host-latch_pair"}, own
    assert jwt_claims(cl.get_cookie("auth.localhost", "CF_Authorization"))["iss"] == f"https://auth.localhost:{port}"
    # a flow cookie tossed from a sibling host (no prefix) is not the browser's flow
    attacker = Client()
    r = attacker.get(base + "/")
    r = attacker.get(r.location)
    flow = attacker.get_cookie("auth.localhost", "__Host-latch_flow")
    assert flow and r.status == 302 and "/cdn-cgi/access/start" in r.location, r
    victim = Client()
    victim.set_cookie("auth.localhost", "latch_flow", flow)
    r = victim.get(f"{auth}/cdn-cgi/access/start?idp=email-code")
    assert r.status == 400 and "Sign-in expired" in r.text, r
    r = attacker.get(f"{auth}/cdn-cgi/access/start?idp=email-code")
    assert r.status == 200 and "Sign in with your email" in r.text, r
    # a token cookie planted by another port of the name or a sibling host (Domain=): the
    # attacker's own token, which would make the victim act as him. On https the token cookie
    # comes with its pair (__Host-latch_pair), which only this origin can set: a planted one
    # proves nobody, and beside the victim's own it is passed over
    mine = cl.get_cookie("pin.localhost", "CF_Authorization")
    pair = cl.get_cookie("pin.localhost", "__Host-latch_pair")
    assert mine and pair and len(pair) == 32
    planted = ak.issue(d, "pin", "mallory@example.com")
    for cookie, who in ((f"CF_Authorization={planted}", None),
                        (f"CF_Authorization={planted}; __Host-latch_pair={pair}", None),
                        (f"CF_Authorization={planted}; CF_Authorization={mine}; __Host-latch_pair={pair}", "tls@example.com"),
                        (f"CF_Authorization={mine}; __Host-latch_pair={'0' * 32}", None)):
        r = Client().get(base + "/", headers=[("Cookie", cookie)], cookies=False)
        if who:
            assert r.status == 200 and r.json()["headers"]["cf-access-authenticated-user-email"] == who, (cookie, r)
        else:
            assert r.status == 302 and "/cdn-cgi/access/login/" in r.location, (cookie, r)
    r = Client().get(f"{auth}/cdn-cgi/access/login/pin.localhost:{port}?redirect_url=%2F",
                     headers=[("Cookie", f"CF_Authorization={cl.get_cookie('auth.localhost', 'CF_Authorization')}")],
                     cookies=False)
    assert r.status == 302 and "/cdn-cgi/access/start" in r.location, r  # no single sign-on without the pair


# --------------------------------------------------------------------------------------------
# no token on a page or in a log

def test_no_token_in_pages_or_logs(gw):
    cl = Client()
    pages = []
    final, chain = oidc_login(cl, gw.url("wiki", "/a"), "alice")
    assert final.status == 200, final
    pages += chain
    pages += otp_login(Client(), gw, "pia@example.com")
    r, c = cl.follow(gw.url("other", "/b"))
    pages += c
    pages.append(cl.get(gw.url("wiki", "/cdn-cgi/access/get-identity")))
    pages.append(cl.get(f"{gw.auth}/cdn-cgi/access/get-identity"))
    r, c = cl.follow(gw.url("wiki", "/cdn-cgi/access/logout"))
    pages += c
    # collect every token value the client was given in a cookie
    tokens = set()
    for x in pages:
        for line in x.all("set-cookie"):
            n, v, a = parse_set_cookie(line)
            if n == "CF_Authorization" and v:
                tokens.add(v)
    assert len(tokens) >= 4, tokens
    ident = [x for x in pages if x.url.endswith("/get-identity")]
    assert all(x.status == 200 and "email" in x.json() for x in ident), ident
    for x in pages:
        if x.header("content-type", ) and x.header("content-type").startswith("application/json") and \
                '"x-request-id"' in x.text:
            continue  # the echo origin's own answer shows the Cf-Access-Jwt-Assertion it received
        for t in tokens:
            assert t not in x.text, (x.url, x.status)
            assert t.split(".")[2] not in x.text, (x.url, "signature")
        assert not TOKEN_RE.search(x.text), (x.url, x.text[:300])
        loc = x.location or ""
        assert not TOKEN_RE.search(loc), loc
    time.sleep(0.3)
    for f in (gw.d.requests_log, gw.d.auth_log, gw.d.stdout_path, gw.d.stderr_path):
        text = f.read_text(errors="replace") if f.exists() else ""
        for t in tokens:
            assert t not in text and t.split(".")[2] not in text, f
        m = TOKEN_RE.search(text)
        assert not m, (f, m and m.group(0)[:40])
        assert gw.idp.secret not in text, f
        for line in text.splitlines():  # no grant, state or OIDC code either
            assert not re.search(r"grant=[0-9a-f]{32}|[?&]code=|state=[0-9a-f]{32}", line), (f, line)
