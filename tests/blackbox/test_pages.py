"""The demo and the gateway's own pages (issue 11): the console mailer's plain PIN line; the
gateway's own endpoints logged and counted with the decision `gateway`, not `deny`; every 429
and 503 page saying when to try again; pages naming the app by its display name (never the
configuration's name) in the organization's branding (name, accent, an inlined logo; bad values
refused by `latchd check` at FILE:LINE:COL); a next step on every page (signed out, invalid
sign-in link, the logout question's Cancel, "Sign in as someone else", the path-blocked page);
and the echo origin's page readable on a phone. Real latchd, real curl-like client, real
Chromium; screenshots go to build/screenshots/ (looked at by a person, not committed)."""

import base64
import json
import re
import struct
import time
import zlib
from urllib.parse import urljoin

import pytest

from browser import (Client, browser, console_code, form_fields, login_config,  # noqa: F401
                     otp_idp, qs)
from harness import LATCHD, free_port, get
from rediskit import redis, redis_factory  # noqa: F401 (fixtures)
from test_metrics import wait_metrics

import subprocess

pytestmark = pytest.mark.timeout(120)

PLAIN_PIN = re.compile(r"^(?:\x1b\[1m)?PIN for (\S+): (\d{8}) \(app ([^,]+), valid 10 minutes\)(?:\x1b\[0m)?$", re.M)


def png(width=8, height=8, rgb=(0, 170, 119)):
    """A real PNG file (zlib, CRCs) of one colour."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- the logo -->\n'
       b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
       b'<rect width="64" height="64" rx="14" fill="#0a7"/><path d="M18 46 L32 16 L46 46 Z" fill="#fff"/></svg>\n')


def app(name, domains, port, display=None, policies=None):
    a = {"name": name, "domains": [d if "*" in d.split("/")[0] else d.replace("PORT", str(port)) for d in domains],
         "origin": "echo",
         "policies": policies or [{"name": f"{name}-people", "decision": "allow",
                                   "include": [{"email_domain": "example.com"}]}]}
    if display:
        a["display_name"] = display
    return a


def otp_login(cl, port, url, email, d, after=0):
    """Signs in with a PIN from the console mailer through `url`; returns the final response."""
    r, _ = cl.follow(url)
    assert r.status == 200 and "Sign in with your email" in r.text, r
    csrf = form_fields(r.text)["csrf"]
    p = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
    assert p.status == 200 and "Check your email" in p.text, p
    code = console_code(d, email, after=after)
    r = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302, r
    final, _ = cl.follow(urljoin(r.url, r.location))
    return final


def buttons(html):
    """Every link drawn as a button: [(label, href)]."""
    return [(re.sub(r"<[^>]+>", "", t), h.replace("&amp;", "&"))
            for h, t in re.findall(r'<a class="button[^"]*" href="([^"]*)">(.*?)</a>', html)]


def check(tmp, text):
    cfg = tmp / "latch.yaml"
    cfg.write_text(text)
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    return p, str(cfg)


# --------------------------------------------------------------------------------------------
# 1. the console mailer's plain line

def test_console_mailer_prints_a_plain_pin_line(latchd):
    port = free_port()
    d = latchd(login_config(port, [otp_idp()], [app("wiki", ["wiki.localhost:PORT"], port, "Team wiki")]),
               port=port)
    cl = Client()
    final = otp_login(cl, port, f"http://wiki.localhost:{port}/x", "carol@example.com", d)
    assert final.status == 200 and final.json()["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
    code = console_code(d, "carol@example.com")
    plain = PLAIN_PIN.findall(d.stderr())
    # one line of its own, not JSON, with the same code: what a person running the demo reads
    assert plain == [("carol@example.com", code, "wiki")], d.stderr()[-1500:]
    for line in d.stderr().splitlines():
        if code in line and not line.startswith("{"):
            assert PLAIN_PIN.fullmatch(line), line
    # in no log file
    assert code not in d.requests_log.read_text() and code not in d.auth_log.read_text()
    # an address no policy admits: the same page, no code anywhere
    cl2 = Client()
    r, _ = cl2.follow(f"http://wiki.localhost:{port}/")
    csrf = form_fields(r.text)["csrf"]
    p = cl2.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "eve@evil.test"})
    assert p.status == 200 and "Check your email" in p.text
    time.sleep(0.5)
    assert "eve@evil.test" not in d.stderr()


# --------------------------------------------------------------------------------------------
# 2. the gateway's own endpoints: decision "gateway" in the log and the metrics

def test_own_endpoints_are_logged_and_counted_as_gateway(latchd):
    port, admin = free_port(), free_port()
    cfg = login_config(port, [otp_idp()], [app("wiki", ["wiki.localhost:PORT"], port)],
                       admin={"listen": f"127.0.0.1:{admin}"})
    d = latchd(cfg, port=port, extra_ports=[admin])
    cl = Client()
    final = otp_login(cl, port, f"http://wiki.localhost:{port}/page", "dan@example.com", d)
    assert final.status == 200
    assert cl.get(f"http://auth.localhost:{port}/").status == 200          # the launcher
    assert get(port, "/", host=f"nowhere.localhost:{port}").status == 404  # no app: still deny
    assert get(port, "/cdn-cgi/access/nope", host=f"auth.localhost:{port}").status == 404
    assert get(port, "/favicon.ico", host=f"auth.localhost:{port}").status == 404  # a browser's
    own = lambda e: e["path"].startswith("/cdn-cgi/access/") or e["host"] == f"auth.localhost:{port}"
    d.wait_log(lambda e: e["path"] == "/cdn-cgi/access/nope")
    lines = d.log_lines()
    mine = [e for e in lines if own(e)]
    # the login: login page, start, PIN form twice, authorized, the launcher
    paths = {e["path"] for e in mine}
    assert {"/cdn-cgi/access/login/wiki.localhost:%d" % port, "/cdn-cgi/access/otp",
            "/cdn-cgi/access/authorized", "/"} <= paths, paths
    assert all(e["decision"] == "gateway" for e in mine), [e for e in mine if e["decision"] != "gateway"]
    assert {e["status"] for e in mine} >= {200, 302, 404}
    assert [e["decision"] for e in lines if e["host"] == f"nowhere.localhost:{port}"] == ["deny"]
    assert [e["decision"] for e in lines if e["host"] == f"wiki.localhost:{port}" and e["path"] == "/page"] == \
        ["login_required", "allow"]
    # the metrics say the same as the log, line for line
    def logged():
        want = {}
        for x in d.log_lines():
            k = (x["app"] or "", x["decision"], str(x["status"]))
            want[k] = want.get(k, 0) + 1
        return want
    e = wait_metrics(admin, lambda e: e.table("latch_requests_total", "app", "decision", "status") == logged(),
                     what="requests as logged")
    table = e.table("latch_requests_total", "app", "decision", "status")
    assert table[("", "gateway", "200")] >= 3 and table[("", "gateway", "302")] >= 2, table
    assert table[("", "deny", "404")] == 1 and table[("", "gateway", "404")] == 2, table


# --------------------------------------------------------------------------------------------
# 3. 429 and 503 pages say when to try again

def test_pin_pages_say_when_and_lead_on(latchd):
    port = free_port()
    d = latchd(login_config(port, [otp_idp()], [app("wiki", ["wiki.localhost:PORT"], port, "Team wiki")]),
               port=port)
    cl = Client()
    r, _ = cl.follow(f"http://wiki.localhost:{port}/deep/page?q=1")
    csrf = form_fields(r.text)["csrf"]
    for i in range(3):  # a sign-in sends two codes; the third is refused
        p = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "fay@example.com"})
    assert p.status == 429 and "you can do that right now" in p.text, p
    (label, href), = [b for b in buttons(p.text) if b[0] == "Start again"]
    # "start again" is a new sign-in for the same app and page, at once
    assert href.split("?")[0] == f"/cdn-cgi/access/login/wiki.localhost:{port}", href
    assert qs(href) == {"redirect_url": "/deep/page?q=1"}, href
    r, _ = cl.follow(urljoin(p.url, href))
    assert r.status == 200 and "Sign in with your email" in r.text and "Team wiki" in r.text, r
    csrf = form_fields(r.text)["csrf"]
    p = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "fay@example.com"})
    assert p.status == 200 and "Check your email" in p.text
    # the client's own budget spent: when, in minutes and as a time of day, and Retry-After
    for i in range(20):
        cl = Client()
        r, _ = cl.follow(f"http://wiki.localhost:{port}/")
        csrf = form_fields(r.text)["csrf"]
        p = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": f"u{i}@example.com"})
        if p.status == 429:
            break
    assert p.status == 429 and re.search(r"Try again in \d+ minutes? \(at \d\d:\d\d UTC\)", p.text), p
    assert 0 < int(p.header("retry-after")) <= 600


def test_store_down_pages_say_when(latchd, redis, tmp_path, browser):
    port = free_port()
    key = tmp_path / "store.key"
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    cfg = login_config(port, [otp_idp()], [app("wiki", ["wiki.localhost:PORT"], port, "Team wiki")],
                       store=f"redis://127.0.0.1:{redis.port}/0", store_key_file=str(key))
    d = latchd(cfg, port=port)
    login = f"http://auth.localhost:{port}/cdn-cgi/access/login/wiki.localhost:{port}?redirect_url=%2F"
    assert Client().get(login).status == 302
    # with Redis the gateway's endpoints run on the job pool: the launcher too
    cl = Client()
    assert otp_login(cl, port, f"http://wiki.localhost:{port}/", "gil@example.com", d).status == 200
    j = cl.get(f"http://auth.localhost:{port}/cdn-cgi/access/apps", accept="application/json")
    assert j.status == 200 and [a["display_name"] for a in j.json()["apps"]] == ["Team wiki"], j
    redis.stop()
    deadline = time.monotonic() + 10
    while True:
        r = Client().get(login)
        if r.status == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status == 503 and r.header("retry-after") == "5", r
    assert "Try again in a few seconds" in r.text and ("Try again", "") in buttons(r.text), r.text
    j = Client().get(login, accept="application/json")
    assert j.status == 503 and j.header("retry-after") == "5" and j.json()["error"] == "store_unavailable", j
    browser.context("phone", phone=True)
    r = browser.goto(f"http://wiki.localhost:{port}/", "phone")
    assert r["status"] == 503 and "Try again in a few seconds" in browser.page("phone")["text"], r
    browser.fits_phone("phone")
    browser.screenshot("pages-store-down-phone", ctx="phone")
    assert d.alive()


# --------------------------------------------------------------------------------------------
# 4. the app's display name and the organization's branding

def branded_gateway(latchd, tmp_path, logo_bytes, logo_name="logo.svg"):
    port = free_port()
    logo = tmp_path / logo_name
    logo.write_bytes(logo_bytes)
    apps = [
        app("int-7f3", ["wiki.localhost:PORT"], port, "Team Wiki"),  # an internal name nobody should see
        app("zz-pay", ["payroll.localhost:PORT"], port, policies=[
            {"name": "only-alice", "decision": "allow", "include": [{"email": "alice@example.com"}]}]),
        app("zz-pub", ["public.localhost:PORT"], port, "Public site",
            [{"name": "anyone", "decision": "bypass", "include": [{"everyone": {}}]}]),
        app("zz-admin", ["public.localhost:PORT/admin/*"], port, "Site administration",
            [{"name": "nobody", "decision": "block", "include": [{"everyone": {}}]}]),
    ]
    idps = [otp_idp(), otp_idp(name="second-pin")]  # two ways: the chooser page shows
    cfg = login_config(port, idps, apps, branding={"name": "Acme Corp", "accent": "#0a7", "logo": str(logo)})
    return latchd(cfg, port=port), port


INTERNAL = ("int-7f3", "zz-pay", "zz-pub", "zz-admin", "only-alice", "nobody", "int-7f3-people")


def assert_branded(html, logo_type):
    assert "Acme Corp" in html
    assert "--accent:#00aa77" in html
    assert f'<img src="data:{logo_type};base64,' in html
    # nothing loaded from elsewhere: no script, stylesheet or image but the inlined logo
    assert not re.search(r"<script|<link|<iframe|url\(", html, re.I), html[:500]
    assert all(s.startswith("data:") for s in re.findall(r'<img src="([^"]*)"', html))
    for name in INTERNAL:
        assert name not in html, (name, html[-1500:])


def test_pages_name_the_app_and_wear_the_branding(latchd, tmp_path, browser):
    d, port = branded_gateway(latchd, tmp_path, SVG)
    cl = Client()
    # the provider choice, the PIN form, the code page
    r, _ = cl.follow(f"http://wiki.localhost:{port}/")
    assert r.status == 200 and "to continue to <b>Team Wiki</b>" in r.text, r
    assert_branded(r.text, "image/svg+xml")
    r, _ = cl.follow(urljoin(r.url, "/cdn-cgi/access/start?idp=email-code"))
    assert "We will send you a code to continue to <b>Team Wiki</b>" in r.text, r
    assert_branded(r.text, "image/svg+xml")
    csrf = form_fields(r.text)["csrf"]
    p = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "bob@example.com"})
    assert "may use <b>Team Wiki</b>" in p.text, p
    assert_branded(p.text, "image/svg+xml")
    code = console_code(d, "bob@example.com")
    # the console line keeps the configuration's name: it is for the operator
    assert ("bob@example.com", code, "int-7f3") in PLAIN_PIN.findall(d.stderr())
    r = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    cl.follow(urljoin(r.url, r.location))
    # an app without display_name: its first domain; denied to bob
    r, _ = cl.follow(f"http://payroll.localhost:{port}/")
    assert r.status == 403 and f"may not use <b>payroll.localhost:{port}</b>" in r.text, r
    assert_branded(r.text, "image/svg+xml")
    # the path-blocked page, anonymous, and JSON for scripts: the display name; the app's name
    # only in a field for scripts
    r = Client().get(f"http://public.localhost:{port}/admin/x")
    assert r.status == 403 and "<b>Site administration</b> is not open to you" in r.text, r
    assert_branded(r.text, "image/svg+xml")
    j = Client().get(f"http://public.localhost:{port}/admin/x", accept="application/json").json()
    assert j["error"] == "forbidden" and j["app"] == "zz-admin" and "Site administration" in j["message"], j
    # in Chromium, desktop and phone
    browser.goto(f"http://wiki.localhost:{port}/")
    browser.screenshot("pages-branded-chooser")
    browser.context("phone", phone=True)
    browser.goto(f"http://wiki.localhost:{port}/", "phone")
    browser.submit('a[href*="idp=email-code"]', "phone")
    browser.fits_phone("phone")
    browser.screenshot("pages-branded-pin-phone", ctx="phone")
    assert browser.eval("document.querySelector('.brand img').naturalWidth", "phone") == 64  # the SVG drew


@pytest.mark.parametrize("kind,data", [("png", png()), ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64),
                                       ("svg", SVG)])
def test_logo_types_by_content(latchd, tmp_path, kind, data):
    d, port = branded_gateway(latchd, tmp_path, data, logo_name="logo.bin")  # the name says nothing
    r = Client().get(f"http://public.localhost:{port}/admin/")
    want = {"png": "image/png", "jpeg": "image/jpeg", "svg": "image/svg+xml"}[kind]
    assert r.status == 403 and f'<img src="data:{want};base64,{base64.b64encode(data).decode()}"' in r.text


BRAND_CFG = """listen:
  - address: 127.0.0.1:{port}
state_dir: {tmp}/state
auth_domain: auth.localhost:{port}
identity_providers: [{{ name: pin, type: onetimepin, mail: console }}]
branding:
  name: {name}
  accent: {accent}
  logo: {logo}
apps:
  - name: wiki
    display_name: {display}
    domains: [wiki.localhost]
    origin: echo
    policies: [{{ name: staff, decision: allow, include: [{{ email_domain: example.com }}] }}]
"""


@pytest.mark.parametrize("field,value,line,col,words", [
    ("accent", '"blue"', 8, 11, "'branding.accent' must be a colour written \"#rrggbb\""),
    ("accent", "#0a7", 8, 10, "write the colour in quotes"),  # YAML: a comment, the value empty
    ("accent", '"#0a77"', 8, 11, "must be a colour"),
    ("accent", '"#0a7;}body{display:none"', 8, 11, "must be a colour"),
    ("logo", "{tmp}/missing.png", 9, 9, "'branding.logo': cannot read"),
    ("logo", "{tmp}", 9, 9, "is not a regular file"),
    ("logo", "{tmp}/big.png", 9, 9, "a logo must be 1 to 32768 bytes"),
    ("logo", "{tmp}/empty.png", 9, 9, "a logo must be 1 to 32768 bytes"),
    ("logo", "{tmp}/anim.gif", 9, 9, "is not a PNG, JPEG or SVG image"),
    ("logo", "{tmp}/page.html", 9, 9, "is not a PNG, JPEG or SVG image"),
    ("name", "N" * 61, 7, 9, "'branding.name' is longer than 60 bytes"),
    ("display", "D" * 81, 12, 19, "'display_name' is longer than 80 bytes"),
    ("display", '""', 12, 19, "'display_name' must not be empty"),
])
def test_check_refuses_bad_branding_at_its_line(tmp_path, field, value, line, col, words):
    (tmp_path / "big.png").write_bytes(png(200, 200, (1, 2, 3))[:8] + b"\x00" * 40000)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 30)
    (tmp_path / "page.html").write_bytes(b"<html><svg></svg></html>")
    (tmp_path / "ok.svg").write_bytes(SVG)
    vals = {"name": "Acme", "accent": '"#0a7"', "logo": str(tmp_path / "ok.svg"), "display": "Team wiki"}
    vals[field] = value.replace("{tmp}", str(tmp_path))
    p, path = check(tmp_path, BRAND_CFG.format(port=free_port(), tmp=tmp_path, **vals))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert f"{path}:{line}:{col}: " in p.stderr and words in p.stderr, p.stderr


def test_check_accepts_good_branding(tmp_path):
    (tmp_path / "ok.svg").write_bytes(SVG)
    for accent in ('"#0a7"', '"#00AA77"'):
        p, _ = check(tmp_path, BRAND_CFG.format(port=free_port(), tmp=tmp_path, name="Acme Corp", accent=accent,
                                                logo=tmp_path / "ok.svg", display="Team wiki"))
        assert p.returncode == 0, p.stderr
    p, path = check(tmp_path, BRAND_CFG.format(port=free_port(), tmp=tmp_path, name="Acme", accent='"#0a7"',
                                               logo=tmp_path / "ok.svg", display="x").replace(
                                                   "  logo:", "  favicon: x\n  logo:"))
    assert p.returncode == 2 and f"{path}:9:3: unknown key 'favicon'" in p.stderr, p.stderr


# --------------------------------------------------------------------------------------------
# 5. a next step on every page

def test_every_page_leads_somewhere(latchd, browser):
    port = free_port()
    apps = [app("wiki", ["wiki.localhost:PORT"], port, "Team wiki"),
            app("payroll", ["payroll.localhost:PORT"], port, "Payroll", [
                {"name": "alice-only", "decision": "allow", "include": [{"email": "alice@example.com"}]}]),
            app("pub", ["public.localhost:PORT"], port, "Public site",
                [{"name": "anyone", "decision": "bypass", "include": [{"everyone": {}}]}]),
            app("pub-admin", ["public.localhost:PORT/admin/*"], port, "Site administration",
                [{"name": "nobody", "decision": "block", "include": [{"everyone": {}}]}]),
            app("private", ["files.localhost:PORT/private/*"], port, "Private files")]
    d = latchd(login_config(port, [otp_idp()], apps), port=port)
    auth, wiki = f"http://auth.localhost:{port}", f"http://wiki.localhost:{port}"

    # an invalid or spent sign-in link on the app host: to the app
    for q in ("", "?grant=x", "?grant=" + "0" * 32):
        r = Client().get(f"{wiki}/cdn-cgi/access/authorized{q}")
        assert r.status == 400 and buttons(r.text) == [("Go to Team wiki", "/")], r
        # a host with apps at paths only: to the launcher, which lists them
        r = Client().get(f"http://files.localhost:{port}/cdn-cgi/access/authorized{q}")
        assert r.status == 400 and buttons(r.text) == [("Your applications", f"{auth}/")], r
    # an expired sign-in on the auth domain: to the launcher
    r = Client().get(f"{auth}/cdn-cgi/access/start?idp=email-code")
    assert r.status == 400 and buttons(r.text) == [("Your applications", "/")], r

    # the path-blocked page, anonymous: the app-denied layout, never "log out first"
    r = Client().get(f"http://public.localhost:{port}/admin/x?y=1")
    assert r.status == 403 and "<h1>Access denied</h1>" in r.text and "<b>Site administration</b>" in r.text
    assert "log out" not in r.text.lower() and "sign in as someone else" not in r.text.lower(), r.text
    assert buttons(r.text) == [("Go to Public site", "/"), ("Your applications", f"{auth}/")], r.text
    j = Client().get(f"http://public.localhost:{port}/admin/x", accept="application/json").json()
    assert "log out" not in j["message"].lower() and j["error"] == "forbidden", j

    # signed in as bob: refused by payroll; the logout question; signed out
    cl = Client()
    otp_login(cl, port, f"{wiki}/", "bob@example.com", d)
    r, _ = cl.follow(f"http://payroll.localhost:{port}/p?x=1")
    assert r.status == 403 and "bob@example.com" in r.text and "<b>Payroll</b>" in r.text
    sw = dict(buttons(r.text))["Sign in as someone else"]
    assert sw.split("?")[0] == "/cdn-cgi/access/logout", sw
    assert qs(sw) == {"switch": "1", "to": f"payroll.localhost:{port}", "redirect_url": "/p?x=1"}, sw
    assert dict(buttons(r.text))["Your applications"] == "/"
    # the question a link from another site gets: Cancel, and the switch carried in the form
    q = cl.get(f"{auth}{sw}", headers=[("Sec-Fetch-Site", "cross-site")])
    assert q.status == 200 and "Sign out?" in q.text and ("Cancel", "/") in buttons(q.text), q
    assert form_fields(q.text) == {"to": f"payroll.localhost:{port}", "switch": "1", "redirect_url": "/p?x=1"}
    q = cl.get(f"{wiki}/cdn-cgi/access/logout", headers=[("Sec-Fetch-Site", "cross-site")])
    assert q.status == 200 and ("Cancel", "/") in buttons(q.text), q  # the app host: Cancel is the app
    # the app's own sign-out: the signed-out page leads back to it
    r, chain = cl.follow(f"{wiki}/cdn-cgi/access/logout")
    assert r.status == 200 and "You are signed out" in r.text, chain
    assert buttons(r.text) == [("Back to Team wiki", f"{wiki}/")], r.text
    assert cl.get_cookie("auth.localhost", "CF_Authorization") is None
    # the auth domain's own sign-out (from the launcher): sign in again there
    r = Client().get(f"{auth}/cdn-cgi/access/logout")
    assert "You are signed out" in r.text and buttons(r.text) == [("Sign in again", "/")], r.text
    # a forged `to` names no served origin: no link to it
    r = Client().get(f"{auth}/cdn-cgi/access/logout?to=evil.example")
    assert buttons(r.text) == [("Sign in again", "/")], r.text
    r = Client().get(f"{auth}/cdn-cgi/access/logout?to=evil.example&switch=1&redirect_url=%2F%2Fevil.example")
    assert r.status == 200 and not r.location, r

    # "Sign in as someone else", in Chromium: bob is refused, clicks it, signs in as alice
    b = browser
    b.goto(f"{wiki}/")
    b.fill("input[name=email]", "bob@example.com")
    b.submit()
    b.fill("input[name=code]", console_code(d, "bob@example.com", after=1))
    b.submit("form:first-of-type button[type=submit]")
    bob_org = b.cookie("CF_Authorization", "auth.localhost")["value"]
    r = b.goto(f"http://payroll.localhost:{port}/salaries?m=5")
    assert r["status"] == 403
    b.screenshot("pages-denied")
    r = b.submit('a.button[href*="switch=1"]')
    p = b.page()
    assert "/cdn-cgi/access/otp" in p["url"] or "/cdn-cgi/access/start" in p["url"], r
    assert "Sign in with your email" in p["text"] and "to continue to Payroll" in p["text"], p["text"]
    assert b.cookie("CF_Authorization", "auth.localhost") is None
    # bob's session is over everywhere, not only in this browser
    r = Client().get(f"{auth}/cdn-cgi/access/get-identity", headers=[("Cookie", f"CF_Authorization={bob_org}")],
                     cookies=False)
    assert r.status == 401, r
    b.screenshot("pages-switch-signin")
    b.fill("input[name=email]", "alice@example.com")
    b.submit()
    b.fill("input[name=code]", console_code(d, "alice@example.com"))
    r = b.submit("form:first-of-type button[type=submit]")
    assert r["url"] == f"http://payroll.localhost:{port}/salaries?m=5", r
    assert json.loads(b.page()["text"])["headers"]["cf-access-authenticated-user-email"] == "alice@example.com"
    # the pages on a phone
    b.context("phone", phone=True)
    for url in (f"http://public.localhost:{port}/admin/x", f"{wiki}/cdn-cgi/access/authorized",
                f"{auth}/cdn-cgi/access/logout"):
        b.goto(url, "phone")
        b.fits_phone("phone")
    b.screenshot("pages-signed-out-phone", ctx="phone")
    b.goto(f"http://public.localhost:{port}/admin/x", "phone")
    b.screenshot("pages-path-blocked-phone", ctx="phone")


def test_someone_else_from_an_app_host_refusal(latchd):
    """A person whose app token the app now refuses (its policy changed) gets the refusal on the
    app's own host: "Sign in as someone else" goes through that host's logout and the auth
    domain's to this app's sign-in form, at the same page."""
    port = free_port()
    open_ = [{"name": "staff", "decision": "allow", "include": [{"email_domain": "example.com"}]}]
    closed = [{"name": "not-hal", "decision": "block", "include": [{"email": "hal@example.com"}]}] + open_
    cfg = lambda pol: login_config(port, [otp_idp()], [app("wiki", ["wiki.localhost:PORT"], port, "Team wiki", pol)])
    d = latchd(cfg(open_), port=port)
    wiki = f"http://wiki.localhost:{port}"
    cl = Client()
    assert otp_login(cl, port, f"{wiki}/doc?v=2", "hal@example.com", d).status == 200
    d.reload(cfg(closed))
    deadline = time.monotonic() + 10
    while (r := cl.get(f"{wiki}/doc?v=2")).status != 403 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status == 403 and "hal@example.com" in r.text and "<b>Team wiki</b>" in r.text, r
    sw = dict(buttons(r.text))["Sign in as someone else"]
    assert sw.startswith("/cdn-cgi/access/logout?") and qs(sw) == {"switch": "1", "redirect_url": "/doc?v=2"}, sw
    final, chain = cl.follow(urljoin(f"{wiki}/", sw))
    assert final.status == 200 and "Sign in with your email" in final.text and "Team wiki" in final.text, \
        [(c.status, c.url) for c in chain]
    hops = [c.url.split("?")[0] for c in chain]
    assert hops[:3] == [f"{wiki}/cdn-cgi/access/logout", f"http://auth.localhost:{port}/cdn-cgi/access/logout",
                        f"http://auth.localhost:{port}/cdn-cgi/access/login/wiki.localhost:{port}"], hops
    assert cl.get_cookie("wiki.localhost", "CF_Authorization") is None
    assert cl.get_cookie("auth.localhost", "CF_Authorization") is None
    # signed in as another person, the browser lands where it was refused
    csrf = form_fields(final.text)["csrf"]
    cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp", {"csrf": csrf, "email": "ivy@example.com"})
    r = cl.post(f"http://auth.localhost:{port}/cdn-cgi/access/otp",
                {"csrf": csrf, "code": console_code(d, "ivy@example.com")})
    final, _ = cl.follow(urljoin(r.url, r.location))
    assert final.status == 200 and final.url == f"{wiki}/doc?v=2", final
    assert final.json()["headers"]["cf-access-authenticated-user-email"] == "ivy@example.com"


# --------------------------------------------------------------------------------------------
# 6. the echo origin's page on a phone

def test_echo_page_is_readable_on_a_phone(latchd, browser):
    port = free_port()
    d = latchd(login_config(port, [otp_idp()], [
        app("pub", ["public.localhost:PORT"], port, "Public site",
            [{"name": "anyone", "decision": "bypass", "include": [{"everyone": {}}]}])]), port=port)
    url = f"http://public.localhost:{port}/hello?x=1"
    browser.context("phone", phone=True)
    r = browser.goto(url, "phone")
    assert r["status"] == 200
    browser.fits_phone("phone")
    # the page's text is the JSON, as before: scripts reading it from a browser keep working
    e = json.loads(browser.page("phone")["text"])
    assert e["path"] == "/hello" and e["query"] == "x=1" and e["headers"]["sec-fetch-dest"] == "document"
    browser.screenshot("echo-phone", ctx="phone")
    browser.goto(url)
    browser.screenshot("echo-desktop")
    # programs get the JSON itself, as always
    for accept in ("application/json", "*/*", "text/html"):
        r = Client().get(url, accept=accept)
        assert r.header("content-type") == "application/json" and r.json()["path"] == "/hello", (accept, r)
        assert r.text.startswith('{"method":"GET"'), r.text[:80]
    r = get(port, "/hello", host=f"public.localhost:{port}")
    assert r.status == 200 and r.json()["query"] is None
