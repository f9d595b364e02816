"""`latch logout` and `latch apps` (SPEC.md §7): the command line gets a session of its own at the
handoff, so that `latch logout` ends it and not the person's browser session (and a browser logout
leaves the command line alone); the old tokens are refused on every worker before `latch logout`
returns (hammered right after it); `latch apps` lists the apps the person may reach, with the org
token, from the gateway's GET /cdn-cgi/access/apps (run once that endpoint exists)."""

import http.client
import json
import threading

import pytest

from clikit import (EMAIL, cli_factory,  # noqa: F401 (fixture)
                    gateway_config, jwt_claims, needs_browser, person_app, printed, read_until_printed)
from harness import free_port, get


def gateway(latchd, workers=4, extra=()):
    port = free_port()
    apps = [person_app("api", "api.localhost", port), person_app("api2", "api2.localhost", port),
            person_app("nobody", "nobody.localhost", port, include=[{"email": "x@other.test"}]),
            {"name": "private", "domains": [f"files.localhost:{port}/private/*"], "origin": "echo",
             "policies": [{"name": "p", "decision": "allow", "include": [{"email_domain": "example.com"}]}]},
            *extra]
    cfg = gateway_config(port, apps)
    cfg["workers"] = workers
    return latchd(cfg, port=port)


def login_elsewhere(c, url, cookies_out):
    """latch login --no-browser; a browser 'elsewhere' opens the printed URL, signs in with the
    PIN and confirms, keeping its cookies in cookies_out. Returns latch's stderr."""
    p = c.popen("--no-browser", "--timeout", "60", "login", url, browser="forbidden")
    err = read_until_printed(p)
    code, shown = printed(err)
    assert code and shown, err
    rc, rec = c.browse(shown, expect_code=code, cookies_out=cookies_out)
    assert rc == 0 and rec["ok"], rec
    out, rest = p.communicate(timeout=40)
    assert p.returncode == 0, (p.returncode, err + rest)
    return err + rest


def browser_org_cookie(cookies_out, port):
    cookies = json.loads(cookies_out.read_text())
    [ck] = [k for k in cookies if k["name"] == "CF_Authorization" and k["domain"] == "auth.localhost"]
    return ck["value"]


def identity_on_auth(d, org_cookie):
    return get(d.port, "/cdn-cgi/access/get-identity", host=f"auth.localhost:{d.port}",
               headers=[("Cookie", f"CF_Authorization={org_cookie}")]).status


class Hammer:
    """Keep-alive connections opened in advance, so that requests with the old token start the
    moment `latch logout` returns; each thread sends `n` requests and records every status."""

    def __init__(self, d, host, token, conns=8, n=40):
        self.d, self.host, self.token, self.n = d, host, token, n
        self.conns = [http.client.HTTPConnection("127.0.0.1", d.port, timeout=10) for _ in range(conns)]
        for c in self.conns:
            c.connect()
        self.statuses = []
        self.lock = threading.Lock()
        self.go = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in self.conns]
        for t in self.threads:
            t.start()

    def _run(self, conn):
        self.go.wait(60)
        for _ in range(self.n):
            conn.request("GET", "/after-logout", headers={"Host": self.host, "cf-access-token": self.token})
            r = conn.getresponse()
            r.read()
            with self.lock:
                self.statuses.append(r.status)

    def fire(self):
        self.go.set()
        for t in self.threads:
            t.join(60)
        for c in self.conns:
            c.close()
        return self.statuses


@needs_browser
@pytest.mark.timeout(240)
def test_logout_ends_the_command_lines_session_not_the_browsers(latchd, cli_factory, tmp_path):
    d = gateway(latchd)
    c = cli_factory(d)
    host = f"api.localhost:{d.port}"
    url = f"http://{host}/"
    cookies = tmp_path / "cookies.json"
    login_elsewhere(c, url, cookies)
    browser = browser_org_cookie(cookies, d.port)
    app_tok, org_tok = c.stored(host)["app_token"], c.stored_org()
    # the command line's own session: not the browser's
    cli_session = jwt_claims(app_tok)["identity_nonce"]
    assert jwt_claims(org_tok)["identity_nonce"] == cli_session
    assert jwt_claims(browser)["identity_nonce"] != cli_session
    # a second app through the org token: the same (command line's) session
    p = c.run("curl", "-sS", f"http://api2.localhost:{d.port}/", browser="forbidden")
    assert p.returncode == 0, p.stderr
    tok2 = c.stored(f"api2.localhost:{d.port}")["app_token"]
    assert jwt_claims(tok2)["identity_nonce"] == cli_session

    hammer = Hammer(d, host, app_tok)
    hammer2 = Hammer(d, f"api2.localhost:{d.port}", tok2, conns=4)
    assert get(d.port, "/", host=host, headers=[("cf-access-token", app_tok)]).status == 200
    p = c.run("logout", url, browser="forbidden")
    statuses = hammer.fire() + hammer2.fire()
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "logged out" in p.stderr and "browser stays signed in" in p.stderr, p.stderr
    # refused everywhere from the moment latch logout returned: every request of the hammer
    admitted = [s for s in statuses if s != 401]
    assert len(statuses) == 12 * 40 and not admitted, (len(admitted), sorted(set(statuses)))
    r = get(d.port, "/cdn-cgi/access/token", host=f"auth.localhost:{d.port}", method="POST",
            headers=[("cf-access-token", org_tok), ("Content-Type", "application/x-www-form-urlencoded")],
            body=f"host={host}".encode())
    assert r.status == 401, r.status
    # every token of that session is forgotten; the browser's session lives on
    assert c.stored(host)["app_token"] is None and c.stored(f"api2.localhost:{d.port}")["app_token"] is None
    assert c.stored_org() is None
    assert identity_on_auth(d, browser) == 200
    logs = [json.loads(line) for line in d.auth_log.read_text().splitlines()]
    assert any(e["event"] == "logout" and e["reason"] == "command line session ended" for e in logs), logs

    # the other way round: a browser logout leaves the command line signed in
    login_elsewhere(c, url, cookies)
    browser = browser_org_cookie(cookies, d.port)
    r = get(d.port, "/cdn-cgi/access/logout", host=f"auth.localhost:{d.port}",
            headers=[("Cookie", f"CF_Authorization={browser}")])
    assert r.status in (200, 302), r.status
    assert identity_on_auth(d, browser) == 401
    p = c.run("curl", "-sS", url, browser="forbidden")
    assert p.returncode == 0 and json.loads(p.stdout)["headers"]["cf-access-authenticated-user-email"] == EMAIL


def test_cli_logout_is_in_force_on_every_worker_when_it_answers(latchd):
    """The gateway's side alone, with nothing between its answer and the hammer: the moment the
    answer to POST cli-logout is read, no worker admits a token of that session."""
    import authkit as ak
    d = gateway(latchd, workers=4)
    host = f"api.localhost:{d.port}"
    for _ in range(3):
        tok = ak.issue(d, "api", EMAIL)
        assert get(d.port, "/", host=host, headers=[("cf-access-token", tok)]).status == 200
        hammer = Hammer(d, host, tok, conns=8, n=25)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("POST", "/cdn-cgi/access/cli-logout", body=b"",
                     headers={"Host": host, "cf-access-token": tok})
        r = conn.getresponse()
        statuses = hammer.fire()
        assert r.status == 200 and json.loads(r.read()) == {"ended": True}, r.status
        conn.close()
        admitted = [s for s in statuses if s != 401]
        assert len(statuses) == 200 and not admitted, (len(admitted), sorted(set(statuses)))


def test_logout_of_a_path_scoped_app_and_all(latchd, cli_factory):
    import authkit as ak
    d = gateway(latchd, workers=2)
    c = cli_factory(d)
    files = f"files.localhost:{d.port}"
    tok = ak.issue(d, "private", EMAIL)
    c.put_token(files, "private", None, tok, path="/private/")
    p = c.run("logout", f"http://{files}/private/x", browser="forbidden")
    assert p.returncode == 0 and "logged out" in p.stderr, p.stderr
    assert get(d.port, "/private/x", host=files, headers=[("cf-access-token", tok)]).status == 401
    # a URL with nothing stored: says so, exit 0
    p = c.run("logout", f"http://api.localhost:{d.port}/", browser="forbidden")
    assert p.returncode == 0 and "nothing to end" in p.stderr, p.stderr
    # --all: every session, every file
    t1, t2 = ak.issue(d, "api", EMAIL), ak.issue(d, "api2", EMAIL)
    c.put_token(f"api.localhost:{d.port}", "api", None, t1)
    c.put_token(f"api2.localhost:{d.port}", "api2", None, t2)
    p = c.run("logout", "--all", browser="forbidden")
    assert p.returncode == 0 and "logged out" in p.stderr, p.stderr
    for host, t in ((f"api.localhost:{d.port}", t1), (f"api2.localhost:{d.port}", t2)):
        assert get(d.port, "/", host=host, headers=[("cf-access-token", t)]).status == 401
    assert [f for f in c.store.iterdir() if f.name.endswith(".json")] == []
    # the gateway's endpoint: POST only, a token of ours only
    r = get(d.port, "/cdn-cgi/access/cli-logout", host=f"api.localhost:{d.port}", method="POST",
            headers=[("cf-access-token", "x.y.z")], body=b"")
    assert r.status == 401
    r = get(d.port, "/cdn-cgi/access/cli-logout", host=f"api.localhost:{d.port}",
            headers=[("cf-access-token", t1)])
    assert r.status == 405
    # an ended session's token, replayed: "ended", and nothing is done again (no revocation
    # written, no reload of every worker, no second logout event: a flood of old tokens costs
    # nothing)
    revs = d.tmp / "state" / "revocations.json"
    before = (revs.read_bytes(), revs.stat().st_mtime_ns)
    logouts = len([e for e in d.log_lines(d.auth_log) if e.get("event") == "logout"])
    for _ in range(5):
        r = get(d.port, "/cdn-cgi/access/cli-logout", host=f"api.localhost:{d.port}", method="POST",
                headers=[("cf-access-token", t1)], body=b"")
        assert r.status == 200 and r.json() == {"ended": True}, r
    assert (revs.read_bytes(), revs.stat().st_mtime_ns) == before
    assert len([e for e in d.log_lines(d.auth_log) if e.get("event") == "logout"]) == logouts


def apps_endpoint(d):
    r = get(d.port, "/cdn-cgi/access/apps", host=f"auth.localhost:{d.port}")
    return r.status != 404


@needs_browser
@pytest.mark.timeout(180)
def test_apps_lists_what_the_person_may_reach(latchd, cli_factory):
    d = gateway(latchd, workers=2)
    if not apps_endpoint(d):
        pytest.skip("the gateway has no GET /cdn-cgi/access/apps yet (the app launcher's endpoint)")
    c = cli_factory(d)
    # no org token yet: a browser login first, for the app of the URL given
    p = c.run("--timeout", "60", "apps", f"http://files.localhost:{d.port}/private/", timeout=90)
    assert p.returncode == 0, (p.returncode, p.stderr)
    lines = p.stdout.splitlines()
    text = p.stdout
    assert f"http://api.localhost:{d.port}" in text and f"http://api2.localhost:{d.port}" in text, text
    assert "nobody" not in text, text
    assert len(c.browser_calls()) == 1
    # then with the stored org token: no browser; --json gives the gateway's JSON
    p = c.run("apps", f"http://api.localhost:{d.port}/", "--json", browser="forbidden")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    names = {a["name"] for a in j["apps"]}
    assert {"api", "api2", "private"} <= names and "nobody" not in names, names
    assert len(lines) == len(j["apps"])
