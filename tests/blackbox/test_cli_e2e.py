"""`latch` end to end (SPEC.md §7): the real CLI against the real latchd, the browser step done by
headless Chromium (cli_browser.mjs, started by latch through $BROWSER, or by the test as a browser
"elsewhere"), signing in with the console mailer's one-time PIN. The first `latch curl` logs in
and stores the token; the next reuses it without touching the network before curl; five at once
share one login; an expired or revoked token leads to a new login; a second app is reached with
the org token and no browser; --no-browser prints a URL any browser completes; a machine with
a service token never sees a browser."""

import json
import os
import re
import signal
import time

import pytest

import authkit as ak
from clikit import (EMAIL, auth_requests, cli_factory,  # noqa: F401 (fixture)
                    gateway_config, jwt_claims, mode_of,
                    needs_browser, person_app, printed, read_until_printed)
from harness import free_port, get



def gateway(latchd, app_session=None, session=None, extra_apps=()):
    port = free_port()
    apps = [person_app("api", "api.localhost", port, session=app_session),
            person_app("api2", "api2.localhost", port, session=app_session),
            person_app("nobody", "nobody.localhost", port, include=[{"email": "x@other.test"}]),
            *extra_apps]
    cfg = gateway_config(port, apps, **({"session_duration": session} if session else {}))
    return latchd(cfg, port=port)


def abandon(d):
    """Stops a daemon that still holds the long poll of a latch that gave up (exit 3): SIGKILL,
    because latchd's drain waits for that poll to run out (test_sigterm_*_abandoned_long_poll
    shows that bug on its own; here it would only fail the session's shutdown check)."""
    d.stopped_by_test = True
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(10)
    d.close_files()


def echo(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def login_via_browser(c, url, *curl_args, n_before=0):
    """`latch curl URL` that logs in through $BROWSER; returns (echo, code latch printed)."""
    p = c.run("--timeout", "60", "curl", "-sS", url, *curl_args, timeout=90)
    code, shown = printed(p.stderr)
    assert code and shown, p.stderr
    rec = c.records(n_before + 1)[-1]
    assert rec["ok"], rec
    assert rec["code"] == code, f"the page showed {rec['code']}, latch printed {code}"
    return p, code, rec


@needs_browser
def test_first_call_logs_in_then_token_reused(latchd, cli_factory, tmp_path):
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/things?x=1")
    # a pre-existing, too open directory and a permissive umask: latch still keeps to 0700/0600
    c.store.mkdir(parents=True, mode=0o755)
    os.chmod(c.store, 0o755)
    p = c.run("--timeout", "60", "curl", "-sS", url, timeout=90, umask=0)
    code, shown = printed(p.stderr)
    assert code and shown and "a browser window opened" in p.stderr, p.stderr
    # the browser got the loopback redirector's address, which carries no key (SPEC.md §7)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", shown), shown
    assert [call.split(" ", 1)[1] for call in c.browser_calls()] == [shown], c.browser_calls()
    assert "key=" not in p.stderr and f"signed in to api.localhost:{d.port} as {EMAIL}" in p.stderr, p.stderr
    rec = c.records(1)[-1]
    assert rec["ok"], rec
    assert rec["code"] == code, f"the page showed {rec['code']}, latch printed {code}"
    assert rec["host_shown"] == f"api.localhost:{d.port}", rec
    assert "Authorize the command line" in rec["confirm_text"] and EMAIL in rec["confirm_text"], rec
    # the page names the app as people know it (display_name, by default its first domain),
    # never the configuration's internal name ("api")
    assert f"sign in to api.localhost:{d.port} (" in rec["confirm_text"], rec["confirm_text"]
    e = echo(p)
    assert e["path"] == "/things" and e["query"] == "x=1", e
    assert e["headers"]["cf-access-authenticated-user-email"] == EMAIL
    assert len(c.browser_calls()) == 1

    # the store: one file per origin (+ the org token), 0600 in a 0700 directory
    assert mode_of(c.store) == 0o700, oct(mode_of(c.store))
    files = sorted(f.name for f in c.store.iterdir() if f.name.endswith(".json"))
    assert files == [f"api.localhost:{d.port}.json", f"org@auth.localhost:{d.port}.json"], files
    for f in c.store.iterdir():
        assert mode_of(f) == 0o600, (f, oct(mode_of(f)))
    rec_app = c.stored(f"api.localhost:{d.port}")
    app_tok = rec_app["app_token"]
    cl = jwt_claims(app_tok)
    assert cl["type"] == "app" and cl["email"] == EMAIL and cl["aud"] == [ak.aud_of(d, f"api.localhost:{d.port}")]
    org = c.stored_org()
    assert jwt_claims(org)["type"] == "org"
    # no token, code or key in the gateway's logs (SPEC.md §9)
    logs = d.requests_log.read_text() + d.auth_log.read_text() + d.stdout()
    assert app_tok not in logs and org not in logs and app_tok.split(".")[2] not in logs

    # second call: the stored token, no browser, and no request before curl's own (the first
    # login's browser is let finish first: its last page loads are not this call's requests)
    c.wait_browsers_done()
    time.sleep(0.5)
    n = len(d.log_lines())
    p = c.run("curl", "-sS", "-X", "POST", "--data-binary", "a=b&c", "-H", "X-Extra: 1",
              url, browser="forbidden")
    e = echo(p)
    assert e["method"] == "POST" and e["body_bytes"] == 5 and e["headers"]["x-extra"] == "1", e
    assert c.forbidden_browser_calls() == [] and len(c.browser_calls()) == 1
    time.sleep(0.3)
    new = d.log_lines()[n:]
    assert [(x["host"], x["method"], x["path"]) for x in new] == [
        (f"api.localhost:{d.port}", "POST", "/things")], new
    assert auth_requests(d, n) == []

    # the exit status is curl's; every argument goes to curl untouched
    p = c.run("curl", "-sS", url, "-o", str(tmp_path / "no" / "such" / "dir"), browser="forbidden")
    assert p.returncode == 23, (p.returncode, p.stderr)
    out = tmp_path / "out.json"
    p = c.run("curl", "-s", "--json", '{"k":1}', "-o", str(out), url, browser="forbidden")
    assert p.returncode == 0 and json.loads(out.read_text())["method"] == "POST"

    # latch token prints it, for any other client
    p = c.run("token", url, browser="forbidden")
    assert p.returncode == 0 and p.stdout.strip() == app_tok
    r = get(d.port, "/", host=f"api.localhost:{d.port}", headers=[("cf-access-token", p.stdout.strip())])
    assert r.status == 200, r

    # latch login with a good stored token: says who, no browser
    p = c.run("login", url, browser="forbidden")
    assert p.returncode == 0 and f"as {EMAIL}" in p.stderr, p.stderr
    assert c.forbidden_browser_calls() == []


@needs_browser
def test_second_app_through_the_org_token(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    login_via_browser(c, d.url("api.localhost", "/"))
    n = len(d.log_lines())
    p = c.run("curl", "-sS", d.url("api2.localhost", "/two"), browser="forbidden")
    e = echo(p)
    assert e["path"] == "/two" and e["headers"]["cf-access-authenticated-user-email"] == EMAIL
    assert c.forbidden_browser_calls() == [] and len(c.browser_calls()) == 1
    assert "browser" not in p.stderr, p.stderr
    reqs = [(x["host"], x["method"], x["path"], x["status"]) for x in auth_requests(d, n)]
    assert (f"auth.localhost:{d.port}", "POST", "/cdn-cgi/access/token", 200) in reqs, reqs
    tok2 = c.stored(f"api2.localhost:{d.port}")["app_token"]
    assert jwt_claims(tok2)["aud"] == [ak.aud_of(d, f"api2.localhost:{d.port}")]
    assert tok2 != c.stored(f"api.localhost:{d.port}")["app_token"]

    # an app whose policy refuses this person: exit 4 and a message, no browser
    p = c.run("--timeout", "5", "curl", "-sS", d.url("nobody.localhost", "/"), browser="forbidden")
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "refuse" in p.stderr, p.stderr
    assert c.forbidden_browser_calls() == []

    # logout: the files go, and the token no longer works at the gateway
    p = c.run("logout", "--all", browser="forbidden")
    assert p.returncode == 0, p.stderr
    assert [f.name for f in c.store.iterdir() if f.name.endswith(".json")] == []
    p = c.run("token", d.url("api.localhost", "/"), browser="forbidden")
    assert p.returncode == 5 and "latch login" in p.stderr, (p.returncode, p.stderr)


@needs_browser
@pytest.mark.timeout(120)
def test_five_concurrent_calls_one_login(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    procs = [c.popen("--timeout", "60", "curl", "-sS", d.url("api.localhost", f"/n{i}"))
             for i in range(5)]
    outs = [p.communicate(timeout=100) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, (p.returncode, err)
    paths = sorted(json.loads(out)["path"] for out, _ in outs)
    assert paths == [f"/n{i}" for i in range(5)]
    assert len(c.browser_calls()) == 1, c.browser_calls()
    assert sum("shows the code" in err for _, err in outs) == 1, [e for _, e in outs]
    c.wait_browsers_done()
    handoffs = [json.loads(l) for l in d.auth_log.read_text().splitlines()
                if '"handoff"' in l and '"allowed":true' in l]
    assert len(handoffs) == 1, handoffs


@needs_browser
@pytest.mark.timeout(120)
def test_expired_token_leads_to_a_new_login(latchd, cli_factory):
    # app tokens live 3 s; the org session 20 s (under the CLI's one-minute freshness margin, so
    # it cannot stand in: a fresh browser login is the only way to a new token)
    d = gateway(latchd, app_session="3s", session="20s")
    c = cli_factory(d)
    url = d.url("api.localhost", "/")
    login_via_browser(c, url)
    old = c.stored(f"api.localhost:{d.port}")["app_token"]
    exp = jwt_claims(old)["exp"]
    time.sleep(max(0, exp + 1 - time.time()))
    # (the gateway still admits it for its 60 s leeway; the CLI does not rely on that)
    p, _, _ = login_via_browser(c, url, n_before=1)
    assert len(c.browser_calls()) == 2
    new = c.stored(f"api.localhost:{d.port}")["app_token"]
    assert new != old and jwt_claims(new)["exp"] > exp
    assert echo(p)["headers"]["cf-access-authenticated-user-email"] == EMAIL


@needs_browser
@pytest.mark.timeout(120)
def test_revoked_token_clear_message_and_new_login(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/")
    login_via_browser(c, url)
    old = c.stored(f"api.localhost:{d.port}")["app_token"]
    time.sleep(1.1)  # revocation is "issued before now", to the second
    ak.cli(d, "revoke", "--email", EMAIL, check=True)
    ak.wait_until(lambda: get(d.port, "/", host=f"api.localhost:{d.port}",
                              headers=[("cf-access-token", old)]).status == 401, 5)
    # latch curl sends the stored token without asking first: curl shows the gateway's 401 as
    # it got it, and latch says what happened and exits 4 (not curl's 0), having forgotten it
    p = c.run("curl", "-sS", url, browser="forbidden")
    assert p.returncode == 4 and json.loads(p.stdout)["error"] == "login_required", (p.returncode, p.stdout)
    assert "refused the token" in p.stderr and "revoked" in p.stderr and "latch login" in p.stderr, p.stderr
    assert c.stored(f"api.localhost:{d.port}")["app_token"] is None
    # latch login: the revoked org token cannot stand in either; a browser login
    p = c.run("--timeout", "60", "login", url, timeout=90)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert f"logged in to api.localhost:{d.port} as {EMAIL}" in p.stderr, p.stderr
    assert len(c.browser_calls()) == 2, "the revoked org token must not stand in for a login"
    assert c.records(2)[-1]["ok"]
    new = c.stored(f"api.localhost:{d.port}")["app_token"]
    assert new != old
    p = c.run("curl", "-sS", url, browser="forbidden")
    assert echo(p)["headers"]["cf-access-authenticated-user-email"] == EMAIL


@needs_browser
@pytest.mark.timeout(120)
def test_no_browser_prints_a_url_completed_elsewhere(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/far")
    p = c.popen("--no-browser", "--timeout", "60", "curl", "-sS", url, browser="forbidden")
    err = read_until_printed(p)
    code, shown = printed(err)
    assert code and shown and "open this URL in a browser" in err, err
    rc, rec = c.browse(shown, expect_code=code)   # a browser on another device
    assert rc == 0 and rec["ok"], rec
    out, rest = p.communicate(timeout=30)
    assert p.returncode == 0, (p.returncode, err + rest)
    assert json.loads(out)["path"] == "/far"
    assert c.forbidden_browser_calls() == [] and c.browser_calls() == []

    # LATCH_NO_BROWSER=1 does the same; nobody opens it: exit 3 and what to do next
    p = c.run("--timeout", "2", "curl", "-sS", d.url("api2.localhost", "/"), browser="forbidden",
              env={"LATCH_NO_BROWSER": "1"})
    # api2 goes through the org token: log out first to force a browser login
    if p.returncode == 0:
        c.run("logout", "--all", browser="forbidden")
        p = c.run("--timeout", "2", "curl", "-sS", d.url("api2.localhost", "/"),
                  browser="forbidden", env={"LATCH_NO_BROWSER": "1"})
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "open this URL" in p.stderr and "--timeout" in p.stderr, p.stderr
    assert c.forbidden_browser_calls() == []
    abandon(d)


def test_service_token_never_opens_a_browser(latchd, cli_factory, tmp_path):
    port = free_port()
    apps = [{"name": "ci-api", "domains": [f"ci.localhost:{port}"], "origin": "echo",
             "policies": [{"name": "ci", "decision": "service_auth",
                           "include": [{"service_token": "deploy"}]}]}]
    # the gateway runs with no service token; one is created, added to the config, reloaded
    cfg = gateway_config(port, [person_app("ci-api", "ci.localhost", port)])
    d = latchd(cfg, port=port)
    cid, secret, stanza = ak.service_token_create(d, "deploy")
    cfg["service_tokens"] = [stanza]
    cfg["apps"] = apps
    d.reload(cfg)
    c = cli_factory(d)
    url = d.url("ci.localhost", "/deploy")
    creds = {"LATCH_CLIENT_ID": cid, "LATCH_CLIENT_SECRET": secret}

    def ok():
        p = c.run("curl", "-sS", url, browser="forbidden", env=creds)
        return p.returncode == 0 and '"cf-access-jwt-assertion"' in p.stdout
    ak.wait_until(ok, 5)
    e = echo(c.run("curl", "-sS", url, browser="forbidden", env=creds))
    assert e["path"] == "/deploy"
    assert jwt_claims(e["headers"]["cf-access-jwt-assertion"])["common_name"] == cid
    assert "cf-access-client-secret" not in e["headers"]
    # a wrong secret: the gateway refuses (curl prints what it got, latch says so and exits 4),
    # still no browser and nothing stored
    p = c.run("--timeout", "3", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url,
              browser="forbidden", env={**creds, "LATCH_CLIENT_SECRET": "0" * len(secret)})
    assert p.returncode == 4 and p.stdout == "401", (p.returncode, p.stdout, p.stderr)
    assert "refused the service token" in p.stderr and "browser" not in p.stderr, p.stderr
    # latch token with the credentials: never a browser either
    p = c.run("--timeout", "3", "token", url, browser="forbidden", env=creds)
    assert c.forbidden_browser_calls() == [] and c.browser_calls() == []
    assert not c.store.exists() or [f for f in c.store.iterdir() if f.name.endswith(".json")] == []


def test_usage_and_exit_codes(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    p = c.run("--help", browser="forbidden")
    assert p.returncode == 0 and "latch curl URL" in p.stdout and "exit status" in p.stdout
    for sub in ("login", "token", "logout"):
        p = c.run(sub, "--help", browser="forbidden")
        assert p.returncode == 0 and "usage" in p.stdout, (sub, p.stdout, p.stderr)
    p = c.run("curl", "-sS", browser="forbidden")
    assert p.returncode == 64 and "URL" in p.stderr
    p = c.run("frobnicate", browser="forbidden")
    assert p.returncode == 64 and "unknown command" in p.stderr
    p = c.run("token", d.url("api.localhost", "/"), browser="forbidden")
    assert p.returncode == 5 and "latch login" in p.stderr
    p = c.run("--timeout", "3", "curl", "-sS", f"http://127.0.0.1:{free_port()}/", browser="forbidden")
    assert p.returncode == 1 and "cannot reach" in p.stderr, (p.returncode, p.stderr)
    assert c.forbidden_browser_calls() == []
    # over ssh with no display and no usable $BROWSER: the URL is printed to open elsewhere;
    # nobody does: exit 3 once --timeout passes, saying what to do next
    p = c.run("--timeout", "2", "curl", "-sS", d.url("api.localhost", "/"),
              browser="/nonexistent/browser", env={"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"})
    assert p.returncode == 3, (p.returncode, p.stderr)
    code, shown = printed(p.stderr)
    assert code and shown and "open this URL in a browser" in p.stderr, p.stderr
    assert "--timeout" in p.stderr
    abandon(d)


def test_sigterm_does_not_wait_for_an_abandoned_long_poll(latchd, cli_factory):
    """A latch that gave up leaves its transfer poll parked in latchd (held up to 25 s). SIGTERM
    drains in-flight requests; a poll whose client is gone has nobody to finish for, and one whose
    client is there can be answered 204 at once (the CLI polls again): latchd must not sit out
    the hold."""
    d = gateway(latchd)
    c = cli_factory(d)
    p = c.run("--no-browser", "--timeout", "1", "curl", "-sS", d.url("api.localhost", "/"),
              browser="forbidden")
    assert p.returncode == 3, (p.returncode, p.stderr)
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = d.stop(timeout=40)
    took = time.monotonic() - t0
    assert rc == 0 and took < 5, f"latchd took {took:.1f} s to exit after SIGTERM (status {rc})"
