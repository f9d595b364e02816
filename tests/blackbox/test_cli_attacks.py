"""Attacks on the command-line handoff and the CLI's token handling (SPEC.md §6, §7): a
confirmation link carrying someone else's key yields nothing without the confirming POST (and
that POST is CSRF-protected); a box sealed to one key does not open with another; a transfer key
is read once; a token is never sent to a host other than its own, whatever curl arguments or
curl configuration redirect it; a login for a host that is no app's is refused; the store keeps
to 0700/0600 and refuses a directory that is not the user's own."""

import hashlib
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

import authkit as ak
from browser import Client
from clikit import (EMAIL, Sodium, b64u, cli_factory,  # noqa: F401 (fixtures)
                    gateway_config, jwt_claims, mode_of,
                    needs_browser, person_app, recorder_factory)
from harness import free_port

HOLD_S = 25  # how long the gateway holds a transfer poll with nothing to give (src/auth/cli.c)


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


def transfer(d, key_b64, timeout=HOLD_S + 15):
    """GET transfer/<key> on the auth domain: (status, body bytes, seconds it took)."""
    req = urllib.request.Request(f"http://127.0.0.1:{d.port}/cdn-cgi/access/transfer/{key_b64}",
                                 headers={"Host": f"auth.localhost:{d.port}"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - t0


def in_thread(fn, *args):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn(*args)), daemon=True)
    t.start()
    return t, out


@needs_browser
@pytest.mark.timeout(120)
def test_link_key_box_and_single_read(latchd, cli_factory, tmp_path):
    """One signed-in victim, an attacker's key X, the victim's own CLI key A, a stranger's key B."""
    na = Sodium()
    d = gateway(latchd)
    c = cli_factory(d)
    auth = f"http://auth.localhost:{d.port}"
    host = f"api.localhost:{d.port}"
    pk_x, _sk_x = na.keypair()
    pk_a, sk_a = na.keypair()
    pk_b, sk_b = na.keypair()
    X, A = b64u(pk_x), b64u(pk_a)

    # the attacker polls for X's box while the victim's browser opens the attacker's link
    poll_x, res_x = in_thread(transfer, d, X)
    cookies = tmp_path / "victim-cookies.json"
    rc, rec = c.browse(f"{auth}/cdn-cgi/access/cli?host={host}&key={X}", mode="view",
                       cookies_out=cookies)
    assert rc == 0 and rec["ok"], rec
    # the page shows the code of the key in the link, which is not the one the victim's CLI shows
    assert rec["code"] == verification_code(pk_x), rec
    assert "Authorize the command line" in rec["confirm_text"] and EMAIL in rec["confirm_text"]

    # the victim's session, outside the browser: the confirming POST is what the attacker lacks
    v = Client()
    for ck in json.loads(cookies.read_text()):
        v.set_cookie(ck["domain"].lstrip("."), ck["name"], ck["value"], ck.get("path", "/"))
    page = v.get(f"{auth}/cdn-cgi/access/cli?host={host}&key={X}")
    assert page.status == 200 and "div class=\"code\"" in page.text, page
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
    form = {"host": host, "key": X}
    r = v.post(f"{auth}/cdn-cgi/access/cli", form)                       # no CSRF token
    assert r.status in (400, 403), r
    r = v.post(f"{auth}/cdn-cgi/access/cli", {**form, "csrf": "0" * 64})  # a wrong one
    assert r.status == 403, r
    r = v.post(f"{auth}/cdn-cgi/access/cli", {**form, "csrf": csrf},      # the right one, cross-site
               headers=[("Origin", "http://evil.localhost")])
    assert r.status == 403, r
    r = Client().post(f"{auth}/cdn-cgi/access/cli", {**form, "csrf": csrf})  # no session
    assert r.status == 401, r
    # a CSRF token is bound to its key: X's token does not confirm another key
    r = v.post(f"{auth}/cdn-cgi/access/cli", {"host": host, "key": b64u(pk_b), "csrf": csrf})
    assert r.status == 403, r

    # the victim's own CLI key A, confirmed for real: the box is sealed to A
    page = v.get(f"{auth}/cdn-cgi/access/cli?host={host}&key={A}")
    csrf_a = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
    r = v.post(f"{auth}/cdn-cgi/access/cli", {"host": host, "key": A, "csrf": csrf_a})
    assert r.status == 200 and "You are signed in" in r.text, r
    st, box, _ = transfer(d, A)
    assert st == 200 and len(box) > 48, (st, box[:100])
    assert b"eyJ" not in box  # sealed, not a token in the clear
    # a second read of the same key: nothing (held, then 204)
    again, res_again = in_thread(transfer, d, A)
    # B's key pair cannot open it; neither can A's public key with B's secret
    assert na.open(box, pk_b, sk_b) is None
    assert na.open(box, pk_a, sk_b) is None
    plain = na.open(box, pk_a, sk_a)
    assert plain is not None
    tokens = json.loads(plain)
    assert jwt_claims(tokens["app_token"])["aud"] == [ak.aud_of(d, host)]
    assert jwt_claims(tokens["org_token"])["type"] == "org"
    org = tokens["org_token"]

    # the org token is exchanged for known apps only, and only an org token is
    def exchange(h, tok):
        return Client().post(f"{auth}/cdn-cgi/access/token", {"host": h},
                             headers=[("cf-access-token", tok)], accept="application/json")
    assert exchange(f"api2.localhost:{d.port}", org).status == 200
    assert exchange(f"nothere.localhost:{d.port}", org).status == 404
    assert exchange(f"api2.localhost:{d.port}", tokens["app_token"]).status == 401

    again.join(HOLD_S + 20)
    st, body, took = res_again["r"]
    assert st == 204 and body == b"", (st, body[:100])
    poll_x.join(HOLD_S + 20)
    st, body, took = res_x["r"]
    assert st == 204 and body == b"" and took >= HOLD_S - 2, (st, body[:100], took)
    # and the gateway logged one handoff, for A's confirmation; none sealed for X
    ok = [json.loads(l) for l in d.auth_log.read_text().splitlines()
          if '"handoff"' in l and '"allowed":true' in l]
    assert len(ok) == 1, ok
    # a malformed key is refused outright
    assert transfer(d, "short")[0] == 400


@pytest.mark.skip(reason="the box is kept 300 s (BOX_TTL_S in src/auth/cli.c): waiting 5 minutes "
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
                       f"?host=nothere.localhost:{d.port}&key={key}", mode="view")
    assert rc != 0 and rec["first_status"] == 404, rec
    assert "Unknown application" in rec["text"] and "code" not in rec, rec
    assert not rec.get("confirm_text")
    # the CLI: a clear message, no browser
    p = c.run("--timeout", "5", "curl", "-sS", f"http://nothere.localhost:{d.port}/",
              browser="forbidden")
    assert p.returncode == 1 and "is not an application behind latch" in p.stderr, (p.returncode, p.stderr)
    assert c.forbidden_browser_calls() == []
    assert not c.store.exists() or [f for f in c.store.iterdir() if f.name.endswith(".json")] == []


# --------------------------------------------------------------------------------------------
# a token is only ever sent to the host it was issued for

LEAK_CASES = {
    # name: curl arguments ({app}: http://<app A's host>, {other}: the recording host, {tmp})
    "L-other-host": ["-L", "{app}/to-other"],
    "sSL-ip": ["-sSL", "{app}/to-ip"],
    "location": ["--location", "{app}/to-other"],
    "location-trusted": ["--location-trusted", "{app}/to-other"],
    "location-abbreviated": ["--location-tr", "{app}/to-other"],  # curl takes unique prefixes
    "curlrc-location": ["{app}/to-other"],                        # ~/.curlrc says `location`
    "config-file-location": ["-K", "{tmp}/curl.cfg", "{app}/to-other"],
    "config-abbreviated": ["--confi", "{tmp}/curl.cfg", "{app}/to-other"],
    "config-file-url": ["-K", "{tmp}/url.cfg", "{app}/plain"],    # the config names a 2nd URL
    "second-url": ["{app}/plain", "{other}/second-url"],          # curl fetches both URLs
    "url-as-option-value": ["-e", "{app}/", "{other}/direct"],    # the first URL is a referer
    "L-same-name-other-port": ["-L", "{app}/to-port"],
    "location-trusted-same-name-other-port": ["--location-trusted", "{app}/to-port"],
}


@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_token_never_sent_to_another_host(latchd, cli_factory, recorder_factory, tmp_path, case):
    other = recorder_factory()
    port = free_port()
    redirector = recorder_factory(redirects={
        "/to-other": f"http://other.localhost:{other.port}/landing",
        "/to-ip": f"http://127.0.0.1:{other.port}/landing",
        "/to-port": f"http://api.localhost:{other.port}/landing",
    })
    apps = [person_app("api", "api.localhost", port, origin=f"http://127.0.0.1:{redirector.port}")]
    d = latchd(gateway_config(port, apps), port=port)
    c = cli_factory(d)
    host = f"api.localhost:{port}"
    tok = ak.issue(d, "api", EMAIL)
    c.put_token(host, "api", ak.aud_of(d, host), tok)
    (tmp_path / "curl.cfg").write_text("location\n")
    (tmp_path / "url.cfg").write_text(f'url = "http://other.localhost:{other.port}/from-config"\n')
    if case == "curlrc-location":
        c.xdg.mkdir(parents=True, exist_ok=True)
        for f in (c.xdg / ".curlrc", c.xdg / "curlrc", c.home / ".curlrc"):
            f.write_text("location\n")
    args = [a.format(tmp=tmp_path, app=f"http://{host}", other=f"http://other.localhost:{other.port}")
            for a in LEAK_CASES[case]]
    p = c.run("curl", "-sS", "--max-time", "10", *args, browser="forbidden")
    assert c.forbidden_browser_calls() == []
    # the other host got its request (so the test means something), without any credential
    seen = other.received()
    if not seen:  # latch may refuse such a command line outright: a usage error that says why
        assert p.returncode == 2 and "latch" in p.stderr and p.stdout == "", \
            f"curl never reached the other host, and latch did not refuse: rc={p.returncode} {p.stderr}"
        return
    # app A got the request, authenticated (the gateway added the assertion for the origin)
    path = next((a.split(str(port), 1)[1] for a in args if a.startswith(f"http://{host}/")), None)
    if case != "url-as-option-value":
        first = [h for h in redirector.received() if h.split(" ")[1] == path]
        assert first and "cf-access-jwt-assertion:" in first[0].lower(), (p.stderr, redirector.received())
    for head in seen:
        lines = head.split("\r\n")
        carrying = [l.split(":", 1)[0] for l in lines[1:]
                    if tok.split(".")[2] in l or l.lower().startswith("cf-access-token")
                    or "cf_authorization" in l.lower()]
        assert not carrying, (f"[{case}] latch curl {' '.join(args)}: "
                              f"the token for {host} reached {lines[1]} ({lines[0]}) in "
                              f"{', '.join(carrying)}")


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
