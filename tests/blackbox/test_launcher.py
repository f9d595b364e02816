"""The app launcher (issue 11): the auth domain's root and /cdn-cgi/access/apps list, for the
person of the org session (cookie) or of an org token (cf-access-token), the apps whose policies
admit them, as a page for browsers and as {"apps":[{"name","display_name","domains","url"}]}
for programs. Real latchd, a real OpenID Connect provider (alice is in `engineering`, bob is
not), the console mailer, and Chromium for the page (screenshots in build/screenshots/)."""

import json
import re
from urllib.parse import urljoin

import pytest

from browser import (Client, browser, console_code, form_fields, idp_factory,  # noqa: F401
                     jwt_claims, login_config, oidc_login, otp_idp)
from harness import free_port, get

pytestmark = pytest.mark.timeout(120)

ALLOW = [{"name": "staff-of-example", "decision": "allow", "include": [{"email_domain": "example.com"}]}]


def app(name, domains, policies=ALLOW, display=None, **extra):
    a = {"name": name, "domains": domains, "origin": "echo", "policies": policies, **extra}
    if display:
        a["display_name"] = display
    return a


@pytest.fixture
def gw(latchd, idp_factory):
    port = free_port()
    idp = idp_factory(port)
    P = port
    apps = [
        app("wiki", [f"wiki.localhost:{P}"], display="Team wiki"),
        app("eng", [f"eng.localhost:{P}", f"eng2.localhost:{P}"], [
            {"name": "eng-only", "decision": "allow", "include": [{"email_domain": "example.com"}],
             "require": [{"group": "engineering"}]}]),
        app("payroll", [f"payroll.localhost:{P}"], [
            {"name": "alice-only", "decision": "allow", "include": [{"email": "alice@example.com"}]}],
            display="Payroll"),
        app("files", [f"files.localhost:{P}/private/*"], display="Private files"),
        app("health", [f"wiki.localhost:{P}/health"], [
            {"name": "probes", "decision": "bypass", "include": [{"everyone": {}}]}]),
        app("public", [f"public.localhost:{P}"], [
            {"name": "anyone", "decision": "bypass", "include": [{"everyone": {}}]}]),
        app("ops", [f"ops.localhost:{P}"], [
            {"name": "not-bob", "decision": "block", "include": [{"email": "bob@example.com"}]}] + ALLOW),
        app("sandbox", ["*.apps.localhost"], display="Sandboxes"),
        app("pinonly", [f"pin.localhost:{P}"], allowed_idps=["email-code"], display="PIN only"),
        app("lan", [f"lan.localhost:{P}"], [
            {"name": "office-lan", "decision": "allow", "include": [{"email_domain": "example.com"}],
             "require": [{"ip": "10.0.0.0/8"}]}]),
    ]
    d = latchd(login_config(port, [idp.idp_config("corp"), otp_idp()], apps), port=port)
    d.idp, d.auth = idp, f"http://auth.localhost:{port}"
    return d


def signed_in(d, account):
    cl = Client()
    final, chain = oidc_login(cl, f"http://wiki.localhost:{d.port}/", account)
    assert final.status == 200, (final, [c.url for c in chain])
    org = cl.get_cookie("auth.localhost", "CF_Authorization")
    assert jwt_claims(org)["type"] == "org"
    return cl, org


def apps_json(d, cl=None, token=None, accept="application/json", path="/cdn-cgi/access/apps"):
    headers = [("cf-access-token", token)] if token else []
    return (cl or Client()).get(f"{d.auth}{path}", headers=headers, accept=accept, cookies=cl is not None)


def test_lists_the_apps_the_person_may_open(gw):
    d, P = gw, gw.port
    alice, alice_org = signed_in(d, "alice")
    r = apps_json(d, alice)
    assert r.status == 200 and r.header("content-type") == "application/json", r
    got = r.json()
    assert list(got) == ["apps"]
    by = {a["name"]: a for a in got["apps"]}
    # refused: eng needs a group, ... alice has it; bypass-only and service apps are no sign-in;
    # pinonly takes PIN sessions only; lan admits the office network, not this client
    assert list(by) == ["wiki", "eng", "payroll", "files", "ops", "sandbox"], list(by)
    for a in got["apps"]:
        assert sorted(a) == ["display_name", "domains", "name", "url"], a
    assert by["wiki"] == {"name": "wiki", "display_name": "Team wiki", "domains": [f"wiki.localhost:{P}"],
                          "url": f"http://wiki.localhost:{P}/"}
    assert by["eng"] == {"name": "eng", "display_name": f"eng.localhost:{P}",
                         "domains": [f"eng.localhost:{P}", f"eng2.localhost:{P}"], "url": f"http://eng.localhost:{P}/"}
    assert by["files"]["url"] == f"http://files.localhost:{P}/private/", by["files"]
    assert by["sandbox"]["url"] is None and by["sandbox"]["domains"] == ["*.apps.localhost"]
    # nothing of the policies
    for secret in ("staff-of-example", "eng-only", "engineering", "alice-only", "not-bob", "office-lan",
                   "10.0.0.0", "email_domain", "decision"):
        assert secret not in r.text, secret
    # the same with the org token in cf-access-token (the command line), whatever Accept says
    for accept in ("application/json", "text/html", None):
        t = apps_json(d, token=alice_org, accept=accept)
        assert t.status == 200 and t.json() == got, (accept, t)
    # each listed url leads to the app (single sign-on)
    final, _ = alice.follow(by["files"]["url"] + "doc")
    assert final.status == 200 and final.json()["path"] == "/private/doc", final

    bob, bob_org = signed_in(d, "bob")
    names = [a["name"] for a in apps_json(d, token=bob_org).json()["apps"]]
    assert names == ["wiki", "files", "sandbox"], names  # not in engineering, not alice, blocked at ops
    # and what the launcher leaves out, the app itself refuses him
    r, _ = bob.follow(f"http://eng.localhost:{P}/")
    assert r.status == 403
    r, _ = bob.follow(f"http://ops.localhost:{P}/")
    assert r.status == 403


def test_no_session_no_list(gw):
    d, P = gw, gw.port
    # a program without a session: 401 JSON, never a list
    for path in ("/cdn-cgi/access/apps", "/"):
        r = apps_json(d, path=path)
        assert r.status == 401 and r.json()["error"] == "login_required" and "apps" not in r.json(), r
        assert r.json()["login"] == f"{d.auth}/" and r.header("www-authenticate").startswith("Bearer "), r
    # a token that is not a live org token: refused, with why
    alice, org = signed_in(d, "alice")
    app_tok = alice.get_cookie("wiki.localhost", "CF_Authorization")
    forged = org[:-4] + ("AAAA" if not org.endswith("AAAA") else "BBBB")
    for tok, why in ((app_tok, None), (forged, None), ("garbage", None)):
        r = apps_json(d, token=tok)
        assert r.status == 401 and r.json()["error"] == "login_required" and r.json()["token_error"], (tok[:20], r)
    # a browser: the sign-in page for the launcher, never an error
    for path in ("/", "/cdn-cgi/access/apps", "/?x=1"):
        r, chain = Client().follow(f"{d.auth}{path}")
        assert r.status == 200 and "to see the applications you may use" in r.text, (path, r)
        assert all(c.status in (200, 302) for c in chain), chain
    assert Client().request("HEAD", f"{d.auth}/").status == 200
    r = Client().request("POST", f"{d.auth}/", body={})
    assert r.status == 405 and r.header("allow") == "GET, HEAD", r
    # only on the auth domain
    assert get(P, "/cdn-cgi/access/apps", host=f"wiki.localhost:{P}",
               headers=[("cf-access-token", org)]).status == 404
    # after logout the same org token lists nothing, anywhere
    alice.follow(f"http://wiki.localhost:{P}/cdn-cgi/access/logout")
    r = apps_json(d, token=org)
    assert r.status == 401 and r.json()["token_error"] == "revoked", r


def test_launcher_sign_in_sends_pins_only_to_people_with_apps(gw):
    d = gw
    for email, may in (("eve@evil.test", False), ("carol@example.com", True)):
        cl = Client()
        r, _ = cl.follow(f"{d.auth}/")
        pick = re.search(r'href="(/cdn-cgi/access/start\?idp=email-code)"', r.text)
        r, _ = cl.follow(urljoin(r.url, pick.group(1)))
        assert "Sign in with your email" in r.text and "to see the applications you may use" in r.text, r
        csrf = form_fields(r.text)["csrf"]
        p = cl.post(f"{d.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
        assert p.status == 200 and "Check your email" in p.text and "may use an application here" in p.text, p
        if not may:
            continue
        code = console_code(d, email)
        r = cl.post(f"{d.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
        assert r.status == 302 and r.location == "/", r  # back to the launcher, signed in
        page = cl.get(f"{d.auth}/")
        assert page.status == 200 and "carol@example.com" in page.text
        names = [a["name"] for a in apps_json(d, cl).json()["apps"]]
        assert names == ["wiki", "files", "ops", "sandbox", "pinonly"], names  # a PIN session
    assert "eve@evil.test" not in d.stderr()


def test_launcher_in_chromium(gw, browser):
    d, P = gw, gw.port
    b = browser
    for ctx, phone, after in (("main", False, 0), ("phone", True, 1)):
        b.context(ctx, phone=phone)
        r = b.goto(f"{d.auth}/", ctx)
        assert r["status"] == 200 and "to see the applications you may use" in b.page(ctx)["text"], r
        b.submit('a[href*="idp=email-code"]', ctx)
        b.fill("input[name=email]", "carol@example.com", ctx)
        b.submit("button[type=submit]", ctx)
        b.fill("input[name=code]", console_code(d, "carol@example.com", after=after), ctx)
        r = b.submit("form:first-of-type button[type=submit]", ctx)
        assert r["url"] == f"{d.auth}/", r
        p = b.page(ctx)
        assert "Your applications" in p["text"] and "carol@example.com" in p["text"], p["text"]
        for name in ("Team wiki", "Private files", "Sandboxes", "PIN only", f"ops.localhost:{P}"):
            assert name in p["text"], name
        assert "Payroll" not in p["text"] and "eng.localhost" not in p["text"]
        if phone:
            b.fits_phone(ctx)
        b.screenshot("launcher-phone" if phone else "launcher", ctx=ctx)
    # a click opens the app, without a new code (single sign-on)
    r = b.submit('a[href$="/private/"]')
    assert r["url"] == f"http://files.localhost:{P}/private/", r
    assert json.loads(b.page()["text"])["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
    # signing out from the launcher: the signed-out page leads back to it
    b.goto(f"{d.auth}/")
    b.submit('a[href="/cdn-cgi/access/logout"]')
    p = b.page()
    assert "You are signed out" in p["text"] and "Sign in again" in p["text"], p["text"]
    b.screenshot("launcher-signed-out")
