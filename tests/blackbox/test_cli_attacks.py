"""Attacks on the command-line handoff and the CLI's store (SPEC.md §6, §7): whoever learns a
handoff link opens and confirms it in his own browser for nothing, visibly (the first browser
claims it; one confirmation per request); the browser latch starts gets a loopback address
that carries no key and answers another user's socket with 403; a poll without the proof of
the key's private half gets nothing and the box stays for the real CLI; a login for a host that
is no app's is refused; the store keeps to 0700/0600 and refuses a directory that is not the
user's own. Where the token goes once stored: test_cli_token_origin.py."""

import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time

import pytest

import authkit as ak
from clikit import (EMAIL, Handoff, Sodium, b64u, cli_factory,  # noqa: F401 (fixtures)
                    gateway_config, jwt_claims, mode_of, needs_browser, otp_session,
                    person_app, self_signed, transfer)
from browser import Client
from harness import free_port

HOLD_S = 25  # how long the gateway holds a transfer poll with nothing to give (src/auth/handoff.c)


def gateway(latchd, extra_apps=()):
    port = free_port()
    apps = [person_app("api", "api.localhost", port), person_app("api2", "api2.localhost", port),
            *extra_apps]
    return latchd(gateway_config(port, apps), port=port)


def verification_code(pk):
    """SPEC.md §7 step 2, as the gateway and the CLI derive it: SHA-256(pk), 40 bits, base32."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    v = int.from_bytes(hashlib.sha256(pk).digest()[:5], "big")
    s = "".join(alphabet[(v >> (5 * (7 - i))) & 31] for i in range(8))
    return s[:4] + "-" + s[4:]


def in_thread(fn, *args):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn(*args)), daemon=True)
    t.start()
    return t, out


def auth_events(d, reason=None):
    evs = [json.loads(l) for l in d.auth_log.read_text().splitlines() if '"handoff"' in l]
    return [e for e in evs if reason is None or reason in (e.get("reason") or "")]


@pytest.mark.timeout(120)
def test_link_claimed_by_one_browser_confirmed_once(latchd):
    """The review's fixation, at the HTTP level: whoever learns a handoff link (the victim's CLI
    key) and opens or confirms it in his own browser gets nowhere, and says so; the victim's
    browser confirms once; a second confirmation is refused, visibly."""
    d = gateway(latchd)
    host = f"api.localhost:{d.port}"
    victim = otp_session(d, EMAIL, host)
    mallory = otp_session(d, "mallory@example.com", host)
    h = Handoff(d, host)

    # the victim's browser opens the link first: it claims the request, gets a binding cookie,
    # and lands on a clean URL (no key in the address bar or the history)
    page, chain = h.open(victim)
    assert chain[0].status == 302 and re.search(r"/cdn-cgi/access/cli\?req=[0-9a-f]{32}$", chain[0].location), chain[0]
    assert "latch_cli=" in " ".join(chain[0].all("set-cookie")) and "HttpOnly" in chain[0].header("set-cookie")
    assert page.status == 200 and h.key not in page.url and "key=" not in page.url, page.url
    assert f'<div class="code">{verification_code(h.pk)}</div>' in page.text
    # the page says what a yes hands over: every app, without asking, until the session ends
    assert "every application you may reach" in page.text and "without asking you again" in page.text
    assert re.search(r"until your session ends: <b>\d{4}-\d\d-\d\d \d\d:\d\d UTC</b> \(in 24 hours\)", page.text), page.text
    # the app by its display name (by default its first domain), never the config's name
    assert f"<b>{host}</b>" in page.text and "<b>api</b>" not in page.text and EMAIL in page.text

    # the same browser opening the link again (a reload, the back button) lands on the same request
    again, chain2 = h.open(victim)
    assert chain2[0].location == chain[0].location and again.status == 200, chain2
    # Mallory, with her own org session, opens the same link, then the victim's clean URL: refused
    r, _ = h.open(mallory)
    assert r.status == 403 and "already opened in another browser" in r.text, r
    r = mallory.get(page.url)
    assert r.status == 403 and "already opened in another browser" in r.text, r
    # and a POST of the victim's form from Mallory's browser (no binding cookie of that request)
    r = h.confirm(mallory, page)
    assert r.status == 403, r
    refused = auth_events(d, "another browser")
    assert len(refused) == 3 and {e["email"] for e in refused} == {"mallory@example.com"}, refused

    # the victim's own POST needs the CSRF token and, from a browser, a same-origin Origin
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    post = f"{h.auth}/cdn-cgi/access/cli"
    assert victim.post(post, {**fields, "csrf": "0" * 64}, headers=[("Origin", h.auth)]).status == 403
    assert victim.post(post, {**fields, "csrf": "0" * 64}).status == 403             # no Origin either
    for evil in ("http://evil.localhost", h.auth.replace("auth.", "api."), "null", h.auth + "0"):
        assert victim.post(post, fields, headers=[("Origin", evil)]).status == 403, evil
    r = h.confirm(victim, page)
    assert r.status == 200 and "You are signed in" in r.text, r
    # once: a second confirmation of the same request is refused and says so
    r = h.confirm(victim, page)
    assert r.status == 409 and "already confirmed" in r.text, r
    r = victim.get(page.url)
    assert r.status == 409 and "already confirmed" in r.text, r
    assert len(auth_events(d, "second confirmation")) == 1
    assert len([e for e in auth_events(d) if e["allowed"]]) == 1

    # the box holds the victim's identity, and only the holder of the key takes it
    st, box, _ = h.take()
    assert st == 200 and jwt_claims(box["app_token"])["email"] == EMAIL, (st, box)
    assert jwt_claims(box["app_token"])["aud"] == [ak.aud_of(d, host)]


@pytest.mark.timeout(120)
def test_transfer_needs_proof_of_the_key(latchd):
    """transfer/<key> hands the box only to a poll that proves it holds the key's private half:
    no proof, a forged one, another key's, or a proof opened with the wrong key get 401 and a
    new challenge, and the box stays for the real CLI."""
    d = gateway(latchd)
    host = f"api.localhost:{d.port}"
    victim = otp_session(d, EMAIL, host)
    h, other = Handoff(d, host), Handoff(d, host)
    page, _ = h.open(victim)
    assert h.confirm(victim, page).status == 200

    st, body, took = transfer(d, h.key, timeout=10)                 # no proof: at once, not held
    assert st == 401 and took < 5 and json.loads(body)["error"] == "proof_required", (st, body)
    challenge = base64.urlsafe_b64decode(json.loads(body)["challenge"] + "==")
    assert b"eyJ" not in challenge and h.na.open(challenge, other.pk, other.sk) is None
    _, theirs = other.challenge()                                     # another key's valid proof
    exp, mac = theirs.split(".")
    for forged in [theirs, f"{exp}.{'0' * 64}", f"{int(exp) + 10**6}.{mac}", "1.2", "", "x" * 80,
                   f"{exp}.{mac.upper()}"]:
        st, body, _ = transfer(d, h.key, proof=forged, timeout=10)
        assert st == 401 and b"challenge" in body, (forged, st, body)
    # a challenge sealed to h's key, opened with another secret key: nothing
    st, body, _ = transfer(d, h.key, timeout=10)
    box = base64.urlsafe_b64decode(json.loads(body)["challenge"] + "==")
    assert h.na.open(box, h.pk, other.sk) is None
    # the box survived all that; the CLI's own proof takes it, once
    st, got, _ = h.take()
    assert st == 200 and jwt_claims(got["app_token"])["email"] == EMAIL, (st, got)
    _, proof = h.challenge()
    again, res = in_thread(lambda: transfer(d, h.key, proof=proof, timeout=HOLD_S + 15))
    # a malformed key is refused outright
    assert transfer(d, "short")[0] == 400
    again.join(HOLD_S + 20)
    st, body, took = res["r"]
    assert st == 204 and body == b"" and took >= HOLD_S - 2, (st, body[:100], took)
    assert len([e for e in auth_events(d) if e["allowed"]]) == 1


@needs_browser
@pytest.mark.timeout(150)
def test_fixation_through_the_browsers_argv(latchd, cli_factory, tmp_path):
    """The review's attack: another local user reads the browser's command line (/proc/PID/
    cmdline) while `latch login` waits, and uses what he finds first. The browser now gets the
    loopback redirector's address only: it carries no key; a connection from another uid gets
    403 (and latch says so), other paths 404, a navigation another page made 403; the victim's
    own browser goes on and her CLI stores her identity."""
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/")
    seen, go = tmp_path / "browser-argv", tmp_path / "go"
    slow = c._script("browser-slow.sh", f"""#!/bin/sh
echo "$@" > '{seen}'
while [ ! -e '{go}' ]; do sleep 0.1; done
exec '{c.good}' "$@"
""")
    p = c.popen("--timeout", "90", "login", url, browser=slow)
    deadline = time.monotonic() + 20
    while not seen.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    argv = seen.read_text().split()
    assert len(argv) == 1 and re.fullmatch(r"http://127\.0\.0\.1:\d+/", argv[0]), argv
    local = argv[0]

    # another user (nobody) connects first: 403, and the address stays for the real browser
    other = subprocess.run(["runuser", "-u", "nobody", "--", "curl", "-sS", "-o", "/dev/null", "-w",
                            "%{http_code} %{redirect_url}", local], capture_output=True, text=True, timeout=20)
    assert other.stdout == "403 ", (other.stdout, other.stderr)
    # this user, another path: 404, nothing given away
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                        local + "favicon.ico"], capture_output=True, text=True, timeout=20)
    assert r.stdout == "404 ", r.stdout
    # a page in a browser of this user that navigates there (Fetch metadata: cross-site): 403
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H",
                        "Sec-Fetch-Site: cross-site", "-H", "Sec-Fetch-Mode: navigate", local],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "403 ", r.stdout
    go.touch()
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, (p.returncode, err, c.records())
    assert "refused a connection from another user" in err, err
    assert f"logged in to api.localhost:{d.port} as {EMAIL}" in err, err
    assert jwt_claims(c.stored(f"api.localhost:{d.port}")["app_token"])["email"] == EMAIL
    # the browser went through the redirector to the clean URL; the key never sat in its argv
    rec = c.records(1)[-1]
    assert rec["ok"] and "key=" not in rec["page_url"], rec
    assert all("key=" not in call for call in c.browser_calls()), c.browser_calls()
    # the redirector is gone with the login
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", local],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "000", r.stdout


@pytest.mark.timeout(150)
def test_leaked_public_key_plants_no_identity(latchd, cli_factory, tmp_path):
    """The review's second look: the public key is not secret (the poll's address carries it), so
    someone who learns it opens the confirmation link first, with a nonce of his own, and
    confirms as himself. The victim's browser is refused (already opened elsewhere), and her
    `latch` refuses the box his confirmation sealed (it lacks her request's nonce): nothing is
    stored, and she is told why. The poll's key is kept out of the request log."""
    d = gateway(latchd)
    c = cli_factory(d)
    host = f"api.localhost:{d.port}"
    mallory = otp_session(d, "mallory@example.com", host)
    seen = tmp_path / "browser-argv"
    record = c._script("browser-record.sh", f"""#!/bin/sh
echo "$@" > '{seen}'
""")
    p = c.popen("--timeout", "60", "login", d.url("api.localhost", "/"), browser=record)
    deadline = time.monotonic() + 20
    while not seen.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    local = seen.read_text().split()[0]
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}", local],
                       capture_output=True, text=True, timeout=20)
    real = r.stdout
    key = re.search(r"[?&]key=([A-Za-z0-9_-]{43})", real).group(1)
    # the attacker knows the key only: his own link, his own session, confirmed first
    h = Handoff(d, host)
    h.key = key
    h.link = f"{h.auth}/cdn-cgi/access/cli?host={host}&key={key}&n={b64u(os.urandom(16))}"
    page, _ = h.open(mallory)
    assert page.status == 200 and "Authorize" in page.text, page
    assert h.confirm(mallory, page).status == 200
    victim_browser = Client()
    r, _ = victim_browser.follow(real)
    assert r.status == 403 and "already opened in another browser" in r.text, r
    out, err = p.communicate(timeout=90)
    assert p.returncode != 0 and "confirmed in a browser latch did not open" in err, (p.returncode, err)
    assert "mallory" not in err and not c.stored(host), (err, c.records())
    log = d.requests_log.read_text()
    assert key not in log and "/cdn-cgi/access/transfer/" in log, log[-500:]


@pytest.mark.skip(reason="the box is kept 300 s (BOX_TTL_S in src/auth/handoff.c): waiting 5 minutes "
                         "is beyond the suite's budget and latchd has no clock to speed up; the "
                         "single read is tested in test_link_key_box_and_single_read")
def test_box_gone_after_five_minutes():
    pass


@needs_browser
def test_login_for_a_host_that_is_no_apps_is_refused(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    na = Sodium()
    key = b64u(na.keypair()[0])
    rc, rec = c.browse(f"http://auth.localhost:{d.port}/cdn-cgi/access/cli"
                       f"?host=nothere.localhost:{d.port}&key={key}&n={b64u(bytes(16))}", mode="view")
    assert rc != 0 and rec["first_status"] == 404, rec
    assert "Unknown application" in rec["text"] and "code" not in rec, rec
    assert not rec.get("confirm_text")
    # the CLI: a clear message, no browser
    p = c.run("--timeout", "5", "curl", "-sS", f"http://nothere.localhost:{d.port}/",
              browser="forbidden")
    assert p.returncode == 1 and "is not an application behind latch" in p.stderr, (p.returncode, p.stderr)
    assert c.forbidden_browser_calls() == []
    assert not c.store.exists() or [f for f in c.store.iterdir() if f.name.endswith(".json")] == []


# a token is only ever sent to the origin it was issued for: test_cli_token_origin.py


def test_store_modes_and_foreign_directory(latchd, cli_factory, tmp_path):
    d = gateway(latchd)
    c = cli_factory(d)
    host = f"api.localhost:{d.port}"
    # XDG_CONFIG_HOME/latch as a symlink to somebody else's (here: any other) directory: refused
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    c.xdg.mkdir(parents=True)
    os.symlink(elsewhere, c.store)
    p = c.run("--timeout", "3", "curl", "-sS", f"http://{host}/", browser="forbidden")
    assert p.returncode == 1 and "refusing" in p.stderr, (p.returncode, p.stderr)
    assert list(elsewhere.iterdir()) == []
    os.unlink(c.store)
    # without XDG_CONFIG_HOME, ~/.config/latch, created 0700, whatever the umask
    p = c.run("token", f"http://{host}/", browser="forbidden", umask=0,
              env={"XDG_CONFIG_HOME": ""})
    assert p.returncode == 5
    assert mode_of(c.home / ".config" / "latch") == 0o700


def test_binding_cookie_on_tls_is_host_prefixed(latchd, tmp_path):
    """On a TLS listener the handoff's binding cookie is __Host-latch_cli: Secure, Path=/, no
    Domain, so no sibling host can set or shadow it."""
    key, crt = self_signed(tmp_path, "auth.localhost", "api.localhost")
    port = free_port()
    cfg = gateway_config(port, [person_app("api", "api.localhost", port)])
    cfg["listen"] = [{"address": f"127.0.0.1:{port}", "tls": {"cert": str(crt), "key": str(key)}}]
    d = latchd(cfg, port=port)
    h = Handoff(d, f"api.localhost:{port}")
    cl = Client(tls=True)
    r = cl.get(h.link.replace("http://", "https://"))
    assert r.status == 302 and "req=" in r.location, r
    ck = [c for c in r.all("set-cookie") if c.startswith("__Host-latch_cli=")]
    assert len(ck) == 1, r.all("set-cookie")
    attrs = [a.strip().lower() for a in ck[0].split(";")[1:]]
    assert "secure" in attrs and "path=/" in attrs and "httponly" in attrs and not [a for a in attrs if a.startswith("domain")], ck
