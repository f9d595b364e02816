"""Browser login end to end (issue 4, SPEC.md §5, §6): Debian's chromium driven by
playwright-core against the real latchd, a real OpenID Connect provider (oidc-provider, with
users, groups and amr) and a real SMTP server (aiosmtpd). Covers: log in and reach the app, single
sign-on into a second app without a provider round trip, a group policy refusing a user with the
denied page, logout, session expiry and the silent reissue of an app token from a live org
session, one-time PIN through the console mailer and through SMTP, and the error pages.
Screenshots of every page a person sees go to build/screenshots/ (artifacts, not committed)."""

import http.server
import json
import threading
import time

import pytest

from browser import (Client, browser, console_code, form_fields, idp_factory,  # noqa: F401
                     jwt_claims, login_config, otp_idp, person_app, smtp_sink)
from harness import free_port

pytestmark = pytest.mark.timeout(120)


def echo_of(b, ctx="main"):
    """The echo origin's JSON (what the origin received) shown on the current page."""
    p = b.page(ctx)
    try:
        return json.loads(p["text"])
    except ValueError:
        raise AssertionError(f"not the echo origin at {p['url']} ({p['status']}):\n{p['text'][:800]}")


def oidc_in_browser(b, url, account, ctx="main", chooser=True):
    """Opens url, picks the corp provider on the login page (when there is a choice), signs in."""
    b.goto(url, ctx)
    if chooser:
        p = b.page(ctx)
        assert "/cdn-cgi/access/login/" in p["url"], p["url"]
        b.submit('a[href*="idp=corp"]', ctx)
    p = b.page(ctx)
    assert "/interaction/" in p["url"], (p["url"], p["text"][:500])
    b.fill("#login", account, ctx)
    return b.submit("#submit", ctx)


@pytest.fixture
def gw(latchd, idp_factory):
    """latchd with two OIDC-or-PIN apps, a group-gated app, a PIN-only app and an app whose
    only provider is down; returns (daemon, provider, port)."""
    port = free_port()
    idp = idp_factory(port, callbacks=["corp"])  # two OpenID Connect providers: one callback each
    down = free_port()  # nothing listens there
    apps = [
        person_app("wiki", "wiki.localhost", port),
        person_app("grafana", "grafana.localhost", port, policy_session="10m"),
        person_app("admin", "admin.localhost", port, require=[{"group": "engineering"}]),
        person_app("pin", "pin.localhost", port, allowed_idps=["email-code"]),
        person_app("legacy", "legacy.localhost", port, allowed_idps=["down"]),
    ]
    idps = [idp.idp_config("corp"), otp_idp(),
            {"name": "down", "type": "oidc", "issuer": f"http://127.0.0.1:{down}", "client_id": "latch",
             "client_secret_file": str(idp.secret_file)}]
    d = latchd(login_config(port, idps, apps, session_duration="1h"), port=port)
    return d, idp, port


def auth_events(d):
    return [json.loads(l) for l in d.auth_log.read_text().splitlines() if l.strip()] \
        if d.auth_log.exists() else []


def test_oidc_login_sso_logout(gw, browser):
    d, idp, port = gw
    wiki, grafana = f"http://wiki.localhost:{port}", f"http://grafana.localhost:{port}"

    # the login page: both ways to sign in are offered (desktop and phone screenshots)
    r = browser.goto(f"{wiki}/docs/page?x=1")
    assert r["status"] == 200 and r["url"].startswith(f"http://auth.localhost:{port}/cdn-cgi/access/login/"), r
    assert r["chain"][0]["status"] == 302
    p = browser.page()
    assert "Continue with corp" in p["text"] and "Email me a sign-in code" in p["text"], p["text"]
    browser.screenshot("login")
    browser.context("phone", viewport={"width": 390, "height": 844})
    browser.goto(f"{wiki}/", ctx="phone")
    browser.screenshot("login-phone", ctx="phone")
    browser.close_context("phone")
    flow = browser.cookie("latch_flow", "auth.localhost")
    assert flow and flow["path"] == "/cdn-cgi/access/" and flow["httpOnly"] and flow["sameSite"] == "Lax"

    # sign in at the provider and land on the page first asked for
    r = oidc_in_browser(browser, f"{wiki}/docs/page?x=1", "alice")
    assert r["url"] == f"{wiki}/docs/page?x=1", r
    e = echo_of(browser)
    assert e["path"] == "/docs/page" and e["query"] == "x=1"
    assert e["headers"]["cf-access-authenticated-user-email"] == "alice@example.com"
    app_tok = e["headers"]["cf-access-jwt-assertion"]
    c = jwt_claims(app_tok)
    assert c["type"] == "app" and c["email"] == "alice@example.com" and c["idp"] == "corp"
    assert c["groups"] == ["engineering", "staff"] and c["amr"] == ["pwd", "mfa"], c
    assert c["iss"] == f"http://auth.localhost:{port}"
    assert len(idp.requests("/auth")) == 1 and len(idp.requests("/token")) == 1

    # identity as the app host sees it
    browser.goto(f"{wiki}/cdn-cgi/access/get-identity")
    ident = json.loads(browser.page()["text"])
    assert ident["email"] == "alice@example.com" and ident["idp"] == "corp"
    assert ident["groups"] == ["engineering", "staff"] and ident["amr"] == ["pwd", "mfa"]
    assert ident["app"] == "wiki" and ident["identity_nonce"] == c["identity_nonce"]

    # single sign-on: a second app, no provider round trip, no page in between
    before = len(idp.requests())
    r = browser.goto(f"{grafana}/d/1")
    assert r["url"] == f"{grafana}/d/1", r
    assert len(idp.requests()) == before, idp.requests()[before:]
    hosts = [n["url"].split("/")[2] for n in r["chain"]]
    assert hosts == [f"grafana.localhost:{port}", f"auth.localhost:{port}",
                     f"grafana.localhost:{port}", f"grafana.localhost:{port}"], r["chain"]
    e2 = echo_of(browser)
    assert e2["headers"]["cf-access-authenticated-user-email"] == "alice@example.com"
    c2 = jwt_claims(e2["headers"]["cf-access-jwt-assertion"])
    assert c2["aud"] != c["aud"] and c2["identity_nonce"] == c["identity_nonce"]
    # per-policy session duration (10m) for grafana, the global one (1h) for wiki
    assert c2["exp"] - c2["iat"] == 600, c2
    assert c["exp"] - c["iat"] == 3600, c
    gck = browser.cookie("CF_Authorization", "grafana.localhost")
    assert abs(gck["expires"] - (time.time() + 600)) < 30, gck

    # logout on one app: its cookie, the org cookie, and every token of the session end
    r = browser.goto(f"{wiki}/cdn-cgi/access/logout")
    assert r["url"].split("?")[0] == f"http://auth.localhost:{port}/cdn-cgi/access/logout", r
    assert "You are signed out" in browser.page()["text"]
    browser.screenshot("signed-out")
    assert browser.cookie("CF_Authorization", "wiki.localhost") is None
    assert browser.cookie("CF_Authorization", "auth.localhost") is None
    r = browser.goto(f"{wiki}/docs/page")
    assert "/cdn-cgi/access/login/" in r["url"] and r["status"] == 200, r
    # grafana's cookie is still in the browser, but its token was revoked with the session
    assert browser.cookie("CF_Authorization", "grafana.localhost") is not None
    r = browser.goto(f"{grafana}/d/1")
    assert "/cdn-cgi/access/login/" in r["url"], r
    ev = auth_events(d)
    assert any(x["event"] == "login" and x["email"] == "alice@example.com" and x["allowed"] for x in ev), ev
    assert any(x["event"] == "logout" and x["email"] == "alice@example.com" for x in ev), ev


def test_group_policy_denies_without_group(gw, browser):
    d, idp, port = gw
    admin = f"http://admin.localhost:{port}"
    r = oidc_in_browser(browser, f"{admin}/", "bob", ctx="bob")
    assert r["status"] == 403, r
    p = browser.page("bob")
    assert "Access denied" in p["text"] and "bob@example.com" in p["text"] and "admin" in p["text"], p["text"]
    assert "engineering" not in p["text"] and "admin-people" not in p["text"]  # no policy internals
    browser.screenshot("denied", ctx="bob")
    # no app cookie was set for him; the echo origin never saw the request
    assert browser.cookie("CF_Authorization", "admin.localhost", ctx="bob") is None
    assert not any('"path":"/"' in l and "admin.localhost" in l for l in d.requests_log.read_text().splitlines()
                   if '"decision":"allow"' in l)
    ev = auth_events(d)
    assert any(x["event"] == "access_denied" and x["email"] == "bob@example.com" and x["app"] == "admin"
               and x["allowed"] is False for x in ev), ev
    # alice has the group: same app, let in
    r = oidc_in_browser(browser, f"{admin}/x", "alice", ctx="alice")
    assert r["url"] == f"{admin}/x" and echo_of(browser, "alice")["headers"][
        "cf-access-authenticated-user-email"] == "alice@example.com"
    # a provider account without a verified email is refused
    r = oidc_in_browser(browser, f"http://wiki.localhost:{port}/", "mallory", ctx="mallory")
    assert r["status"] == 403 and "did not confirm an email" in browser.page("mallory")["text"], r
    assert browser.cookie("CF_Authorization", "auth.localhost", ctx="mallory") is None


def test_session_expiry_and_silent_reissue(latchd, idp_factory, browser):
    port = free_port()
    idp = idp_factory(port)
    apps = [person_app("short", "short.localhost", port, session="2s")]
    d = latchd(login_config(port, [idp.idp_config("corp"), otp_idp()], apps, session_duration="7s"), port=port)
    url = f"http://short.localhost:{port}/home"
    r = oidc_in_browser(browser, url, "alice")
    assert r["url"] == url, r
    c1 = jwt_claims(echo_of(browser)["headers"]["cf-access-jwt-assertion"])
    assert c1["exp"] - c1["iat"] == 2
    org = browser.cookie("CF_Authorization", "auth.localhost")
    assert abs(org["expires"] - time.time() - 7) < 3
    app_ck = browser.cookie("CF_Authorization", "short.localhost")
    assert abs(app_ck["expires"] - time.time() - 2) < 2
    n_auth = len(idp.requests("/auth"))

    # the app token is gone after 2 s; the org session (7 s) silently issues a new one
    time.sleep(max(0, app_ck["expires"] + 0.5 - time.time()))
    assert browser.cookie("CF_Authorization", "short.localhost") is None
    r = browser.goto(url)
    assert r["url"] == url and r["status"] == 200, r
    assert [n["status"] for n in r["chain"]] == [302, 302, 302, 200], r["chain"]
    assert "/cdn-cgi/access/authorized?grant=" in r["chain"][2]["url"]
    c2 = jwt_claims(echo_of(browser)["headers"]["cf-access-jwt-assertion"])
    assert c2["iat"] > c1["iat"] and c2["identity_nonce"] == c1["identity_nonce"]
    assert len(idp.requests("/auth")) == n_auth  # no provider round trip

    # after the org session ends too, the app asks to log in again
    time.sleep(max(0, org["expires"] + 0.5 - time.time()))
    r = browser.goto(url)
    assert "/cdn-cgi/access/login/" in r["url"] and "Sign in" in browser.page()["text"], r


def otp_in_browser(b, url, email, get_code, ctx="main", shot=None):
    r = b.goto(url, ctx)
    assert "/cdn-cgi/access/start" in r["url"] or "/cdn-cgi/access/otp" in r["url"], r
    p = b.page(ctx)
    assert "Sign in with your email" in p["text"], p["text"]
    if shot:
        b.screenshot(f"{shot}-email", ctx=ctx)
    b.fill("input[name=email]", email, ctx)
    r = b.submit("button[type=submit]", ctx)
    p = b.page(ctx)
    assert r["status"] == 200 and "Check your email" in p["text"] and email.lower() in p["text"], (r, p["text"])
    if shot:
        b.screenshot(f"{shot}-code", ctx=ctx)
    code = get_code()
    b.fill("input[name=code]", code, ctx)
    return b.submit("form:first-of-type button[type=submit]", ctx), code


def test_otp_console_mailer(gw, browser):
    d, idp, port = gw
    url = f"http://pin.localhost:{port}/inbox"
    r, code = otp_in_browser(browser, url, "carol@example.com",
                             lambda: console_code(d, "carol@example.com"), shot="pin")
    assert r["url"] == url, r
    e = echo_of(browser)
    assert e["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
    c = jwt_claims(e["headers"]["cf-access-jwt-assertion"])
    assert c["idp"] == "email-code" and c["amr"] == ["otp"], c
    assert len(idp.requests("/auth")) == 0
    # the code is in stderr (the console mailer's purpose) but in no log file
    assert code not in d.auth_log.read_text() and code not in d.requests_log.read_text()
    # a wrong code shows the code page again with an error
    browser.context("wrong")
    browser.goto(url, "wrong")
    browser.fill("input[name=email]", "carol@example.com", "wrong")
    browser.submit(ctx="wrong")
    console_code(d, "carol@example.com", after=1)
    browser.fill("input[name=code]", "00000000" if code != "00000000" else "11111111", "wrong")
    r = browser.submit("form:first-of-type button[type=submit]", "wrong")
    assert r["status"] == 400 and "That code is not right" in browser.page("wrong")["text"]
    browser.screenshot("pin-wrong-code", ctx="wrong")


class EvilSite:
    """Another site (127.0.0.1, not *.localhost: another site for the browser) serving pages."""

    def __init__(self):
        pages = self.pages = {}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_attacks_from_another_site_in_a_real_browser(gw, browser):
    """Chromium, signed in, visits another site's page that tries three things: end the session
    through an image pointing at the logout URL (logout CSRF), frame the command line's
    confirmation page to trick a click on it (clickjacking), and send a fresh browser through the
    attacker's own unredeemed sign-in link (login CSRF). All three fail."""
    d, idp, port = gw
    evil = EvilSite()
    try:
        url = f"http://pin.localhost:{port}/inbox"
        otp_in_browser(browser, url, "carol@example.com", lambda: console_code(d, "carol@example.com"))
        assert echo_of(browser)["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
        key = "A" * 43
        evil.pages["/page"] = (
            f'<a id="out" href="http://pin.localhost:{port}/cdn-cgi/access/logout">news</a>'
            f'<iframe src="http://auth.localhost:{port}/cdn-cgi/access/cli?host=pin.localhost:{port}&key={key}&n=AAAAAAAAAAAAAAAAAAAAAA"></iframe>')
        browser.goto(evil.url + "/page")
        frames = browser.frames()
        assert len(frames) == 1 and "/cdn-cgi/access/cli" not in frames[0], frames  # blocked: an error page
        # a top-level navigation carries the SameSite=Lax cookie: the person is asked first
        r = browser.submit("#out")
        p = browser.page()
        assert r["status"] == 200 and "Sign out?" in p["text"] and "carol@example.com" in p["text"], (r, p["text"])
        browser.screenshot("logout-confirm")
        time.sleep(1.2)  # a revocation would have reached every worker by now
        browser.goto(url)
        assert echo_of(browser)["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
        assert not [e for e in auth_events(d) if e["event"] == "logout"]
        # the person's own choice: the confirmation's form ends the session
        browser.goto(evil.url + "/page")
        browser.submit("#out")
        r = browser.submit("button[type=submit]")
        assert "You are signed out" in browser.page()["text"], r
        assert browser.cookie("CF_Authorization", "pin.localhost") is None
        assert [e for e in auth_events(d) if e["event"] == "logout" and e["email"] == "carol@example.com"]
        # login CSRF: mallory signs in with PIN through plain HTTP, keeps his grant link, and
        # the evil page sends a fresh browser (a victim with no session) through it
        mallory = Client()
        r, _ = mallory.follow(url)
        csrf = form_fields(r.text)["csrf"]
        mallory.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "mallory@example.com"})
        code = console_code(d, "mallory@example.com")
        r = mallory.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
        assert "/cdn-cgi/access/authorized?grant=" in (r.location or ""), r
        evil.pages["/link"] = f'<a id="go" href="{r.location}">a cat</a>'
        browser.context("victim")
        browser.goto(evil.url + "/link", "victim")
        r = browser.submit("#go", "victim")
        # the grant is spent, and the victim is asked to sign in as herself
        assert "/cdn-cgi/access/authorized?grant=" in r["chain"][0]["url"], r
        assert "Sign in with your email" in browser.page("victim")["text"], r
        assert browser.cookie("CF_Authorization", "pin.localhost", "victim") is None
        assert mallory.get(r["chain"][0]["url"]).status == 400
        browser.screenshot("login-csrf-refused", ctx="victim")
    finally:
        evil.close()


def test_otp_smtp(latchd, smtp_sink, browser):
    port = free_port()
    apps = [person_app("mailapp", "mail.localhost", port)]
    d = latchd(login_config(port, [otp_idp(mail=smtp_sink.url)], apps), port=port)
    url = f"http://mail.localhost:{port}/"
    r, code = otp_in_browser(browser, url, "Dave@Example.com",
                             lambda: smtp_sink.wait_code("dave@example.com")[0])
    assert r["url"] == url, r
    assert echo_of(browser)["headers"]["cf-access-authenticated-user-email"] == "dave@example.com"
    msg = smtp_sink.messages[0]
    assert msg["from"] == "access@example.com" and msg["to"] == ["dave@example.com"]
    assert code in msg["data"] and "mailapp" in msg["data"]
    assert "one-time PIN" not in d.stderr()  # SMTP, not the console
    # an address no policy admits: the same page, and no mail
    browser.context("x")
    browser.goto(url, "x")
    browser.fill("input[name=email]", "eve@evil.test", "x")
    r = browser.submit(ctx="x")
    assert r["status"] == 200 and "Check your email" in browser.page("x")["text"]
    time.sleep(1.0)
    assert [m["to"] for m in smtp_sink.messages] == [["dave@example.com"]]


def test_error_pages(gw, browser):
    d, idp, port = gw
    # an open redirect refused, in a browser
    r = browser.goto(f"http://auth.localhost:{port}/cdn-cgi/access/login/wiki.localhost:{port}"
                     "?redirect_url=//evil.example/")
    assert r["status"] == 400 and "auth.localhost" in r["url"], r
    assert "Invalid return address" in browser.page()["text"]
    browser.screenshot("error-redirect")
    # the only provider of an app is down: a clear page, not a hang
    r = browser.goto(f"http://legacy.localhost:{port}/")
    assert r["status"] == 502, r
    assert "Sign-in is unavailable" in browser.page()["text"]
    browser.screenshot("error-idp-down")
    # a sign-in link already used
    r = browser.goto(f"http://wiki.localhost:{port}/cdn-cgi/access/authorized?grant={'0' * 32}")
    assert r["status"] == 400 and "used or expired" in browser.page()["text"], r
    browser.screenshot("error-grant")
