"""`latch` and apps that are a path of a host (SPEC.md §4, §7): a token per app (per AUD), found
from the URL's own path as the gateway normalizes and matches it; several apps on one host, each
with its own token, the second bought with the org token and no browser; a token never sent to a
path of another app; the gateway's refusal of a token `latch curl` sent said, with a non-zero
exit. The real `latch` and `curl` against a real latchd; the browser step in headless Chromium."""

import json
import time
import urllib.parse

import pytest

import authkit as ak
from clikit import (EMAIL, auth_requests, cli_factory,  # noqa: F401 (fixture)
                    gateway_config, jwt_claims, needs_browser, printed)
from harness import free_port, get


def app(name, patterns, include=None, decision="allow"):
    return {"name": name, "domains": list(patterns), "origin": "echo",
            "policies": [{"name": f"{name}-p", "decision": decision,
                          "include": include or [{"email_domain": "example.com"}]}]}


def aud_at(d, host, path):
    q = urllib.parse.quote(path, safe="/")
    r = get(d.port, f"/cdn-cgi/access/app?path={q}", host=host)
    assert r.status == 200, (host, path, r.status, r.body)
    return r.json()["aud"]


def echo(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def admitted_aud(p):
    """The AUD of the token the gateway admitted, as the origin (echo) received it."""
    return jwt_claims(echo(p)["headers"]["cf-access-jwt-assertion"])["aud"][0]


def files_gateway(latchd, root=False, extra=()):
    """files.localhost:P with an app at /private/* (and, when root, one at the host itself); a
    second host for the org token's exchange."""
    port = free_port()
    h = f"files.localhost:{port}"
    apps = [app("private", [f"{h}/private/*"])]
    if root:
        apps.append(app("files", [h]))
    apps += [app("api", [f"api.localhost:{port}"]), *extra]
    return latchd(gateway_config(port, apps), port=port), h


def login_browser(c, url, *extra):
    before = len(c.records())
    p = c.run("--timeout", "60", "login", url, *extra, timeout=90)
    assert p.returncode == 0, (p.returncode, p.stderr)
    code, shown = printed(p.stderr)
    rec = c.records(before + 1)[-1]
    assert rec["ok"] and rec["code"] == code, (rec, p.stderr)
    return p


# --------------------------------------------------------------------------------------------
# discovery by path (the gateway side)

def test_discovery_by_path_and_patterns_only_for_a_token(latchd):
    d, h = files_gateway(latchd, root=False)
    # nothing at the host's root: no app; /private/x, and its other spellings, are the app
    assert get(d.port, "/cdn-cgi/access/app", host=h).status == 404
    assert get(d.port, "/cdn-cgi/access/app?path=/private", host=h).status == 404  # /private/* not /private
    want = aud_at(d, h, "/private/x")
    for spelling in ("/private/", "/a/../private/x", "//private/x", "/%70rivate/x", "/private;v=1/x",
                     "/private/./x"):
        assert aud_at(d, h, spelling) == want, spelling
    # a path the gateway refuses (400 for a request) is refused here too
    for bad in ("/private%2Fx", "x", "/a\\b"):
        r = get(d.port, f"/cdn-cgi/access/app?path={urllib.parse.quote(bad, safe='')}", host=h)
        assert r.status in (400, 404), (bad, r.status)
    # anonymous: no patterns; with a token of another app: why it is refused, no patterns
    r = get(d.port, "/cdn-cgi/access/app?path=/private/x", host=h)
    assert "routes" not in r.json() and "token" not in r.json()
    other = ak.issue(d, "api", EMAIL)
    r = get(d.port, "/cdn-cgi/access/app?path=/private/x", host=h, headers=[("cf-access-token", other)])
    assert r.json()["token"] == "bad_audience" and "routes" not in r.json(), r.json()
    # with its own token: ok, whose, and the host's patterns (only this host's)
    tok = ak.issue(d, "private", EMAIL)
    r = get(d.port, "/cdn-cgi/access/app?path=/private/x", host=h, headers=[("cf-access-token", tok)])
    j = r.json()
    assert j["token"] == "ok" and j["email"] == EMAIL, j
    assert j["routes"] == [{"pattern": f"{h}/private/*", "aud": want}], j


def test_long_paths_one_limit_for_discovery_handoff_and_exchange(latchd, cli_factory):
    """A path a sign-in can carry (under 2048 bytes) is one the discovery, the handoff link and
    the exchange all take; a longer one is refused by latch at once, saying why, instead of a
    login that could never finish."""
    d, h = files_gateway(latchd)
    long_ok = "/private/" + "a" * 1500
    assert aud_at(d, h, long_ok) == aud_at(d, h, "/private/x")
    too_long = "/private/" + "a" * 2100
    r = get(d.port, f"/cdn-cgi/access/app?path={too_long}", host=h)
    assert r.status == 400 and "2047" in r.json()["message"], r.body
    # the exchange of the org token takes what discovery took
    key, kid = ak.private_key(d)
    org = ak.assemble(ak.header(kid), ak.claims(d, f"auth.localhost:{d.port}", type="org", email=EMAIL), key)
    for path, status in ((long_ok, 200), (too_long, 400)):
        r = get(d.port, "/cdn-cgi/access/token", host=f"auth.localhost:{d.port}", method="POST",
                headers=[("cf-access-token", org),
                         ("Content-Type", "application/x-www-form-urlencoded")],
                body=f"host={h}&path={path}".encode())
        assert r.status == status, (path[:20], r.status, r.body)
    c = cli_factory(d)
    p = c.run("--timeout", "30", "login", f"http://{h}{too_long}", browser="forbidden", timeout=20)
    assert p.returncode == 64 and "longer than 2047 bytes" in p.stderr, (p.returncode, p.stderr)
    assert not c.forbidden_browser_calls()


# --------------------------------------------------------------------------------------------
# the command line

@needs_browser
@pytest.mark.timeout(180)
def test_path_scoped_app_login_curl_token_and_second_app_on_the_host(latchd, cli_factory):
    d, h = files_gateway(latchd, root=True)
    c = cli_factory(d)
    private, root = aud_at(d, h, "/private/x"), aud_at(d, h, "/x")
    assert private != root
    # the issue's case: log in for /private/, then latch curl …/private/ is admitted, exit 0
    p = login_browser(c, f"http://{h}/private/")
    assert f"logged in to {h} as {EMAIL}" in p.stderr and "(app private)" in p.stderr, p.stderr
    assert len(c.browser_calls()) == 1
    tok_private = c.stored(h, private)["app_token"]
    assert jwt_claims(tok_private)["aud"] == [private]
    c.wait_browsers_done()
    n = len(d.log_lines())
    p = c.run("curl", "-sS", f"http://{h}/private/docs?x=1", browser="forbidden")
    assert admitted_aud(p) == private and echo(p)["path"] == "/private/docs"
    time.sleep(0.3)
    # no network round trip before curl: the gateway saw curl's request alone
    assert [(e["method"], e["path"]) for e in d.log_lines()[n:]] == [("GET", "/private/docs")], d.log_lines()[n:]

    # the root app of the same host: its own token, through the org token, no browser
    n = len(d.log_lines())
    p = c.run("curl", "-sS", f"http://{h}/readme", browser="forbidden")
    assert admitted_aud(p) == root
    reqs = [(e["host"], e["path"], e["status"]) for e in auth_requests(d, n)]
    assert (f"auth.localhost:{d.port}", "/cdn-cgi/access/token", 200) in reqs, reqs
    assert len(c.browser_calls()) == 1 and c.forbidden_browser_calls() == []
    assert c.stored(h, root)["app_token"] != tok_private
    assert c.stored(h, private)["app_token"] == tok_private  # one token per app, both kept

    # each path gets its own app's token, whatever its spelling, without asking first
    n = len(d.log_lines())
    cases = {"/private/a": private, "/private": root, "/privateer/x": root, "/a/../private/b": private,
             "//private/c": private, "/%70rivate/d": private, "/private;x/e": private, "/": root}
    for path, want in cases.items():
        p = c.run("curl", "-sS", "--path-as-is", f"http://{h}{path}", browser="forbidden")
        assert admitted_aud(p) == want, (path, p.stdout)
    time.sleep(0.3)
    assert auth_requests(d, n) == [], auth_requests(d, n)

    # latch token and latch login, path-aware
    for path, want in (("/private/", private), ("/other", root)):
        p = c.run("token", f"http://{h}{path}", browser="forbidden")
        assert p.returncode == 0 and jwt_claims(p.stdout.strip())["aud"] == [want], (path, p.stderr)
        p = c.run("login", f"http://{h}{path}", browser="forbidden")
        assert p.returncode == 0 and f"as {EMAIL}" in p.stderr, (path, p.stderr)
    # a path of no app: a clear word, nothing printed
    d2, h2 = files_gateway(latchd, root=False)
    c2 = cli_factory(d2)
    p = c2.run("--timeout", "3", "curl", "-sS", f"http://{h2}/elsewhere", browser="forbidden")
    assert p.returncode == 1 and "is not an application behind latch" in p.stderr and "path" in p.stderr, p.stderr
    assert p.stdout == ""


def test_two_apps_in_one_command_are_refused(latchd, cli_factory):
    d, h = files_gateway(latchd, root=True)
    c = cli_factory(d)
    private, root = aud_at(d, h, "/private/x"), aud_at(d, h, "/x")
    c.put_token(h, "private", private, ak.issue(d, "private", EMAIL), path="/private/x")
    c.put_token(h, "files", root, ak.issue(d, "files", EMAIL), path="/x")
    # the four discovery requests above are logged (a worker writes its lines before it sleeps,
    # which may come after its answers were read)
    deadline = time.monotonic() + 10
    while len([e for e in d.log_lines() if e["path"] == "/cdn-cgi/access/app"]) < 4:
        assert time.monotonic() < deadline, d.log_lines()
        time.sleep(0.05)
    n = len(d.log_lines())
    for args in ([f"http://{h}/private/a", f"http://{h}/b"], [f"http://{h}/b", "--url", f"http://{h}/private/a"],
                 [f"http://{h}/{{private,public}}/a"], ["--request-target", "http://other.localhost/x", f"http://{h}/b"]):
        p = c.run("curl", "-sS", *args, browser="forbidden")
        assert p.returncode == 64 and p.stdout == "", (args, p.returncode, p.stderr)
        assert "latch curl:" in p.stderr, p.stderr
    time.sleep(0.3)
    assert d.log_lines()[n:] == [], d.log_lines()[n:]
    # several URLs of one app are fine; -g makes brackets literal (the root app's path)
    p = c.run("curl", "-sS", f"http://{h}/private/a", f"http://{h}/private/b", browser="forbidden")
    assert p.returncode == 0 and p.stdout.count('"/private/') == 2, p.stdout
    p = c.run("curl", "-sSg", f"http://{h}/x{{a,b}}", browser="forbidden")
    assert admitted_aud(p) == root
    # --request-target decides the path (and the app), and -T's file name ends a URL ending in '/'
    p = c.run("curl", "-sS", "--request-target", "/private/t", f"http://{h}/b", browser="forbidden")
    assert admitted_aud(p) == private and echo(p)["path"] == "/private/t"
    up = c.tmp / "notes.txt"
    up.write_text("hello")
    p = c.run("curl", "-sS", "-T", str(up), f"http://{h}/private/", browser="forbidden")
    assert admitted_aud(p) == private and echo(p)["path"] == "/private/notes.txt", p.stdout
    p = c.run("curl", "-sS", "-T", str(up), f"http://{h}/", browser="forbidden")
    assert admitted_aud(p) == root and echo(p)["path"] == "/notes.txt", p.stdout


def test_gateway_refusal_is_said_and_exits_non_zero(latchd, cli_factory, tmp_path):
    port = free_port()
    h = f"files.localhost:{port}"
    apps = [app("files", [h]), app("api", [f"api.localhost:{port}"])]
    cfg = gateway_config(port, apps)
    d = latchd(cfg, port=port)
    c = cli_factory(d)
    root = aud_at(d, h, "/x")
    c.put_token(h, "files", root, ak.issue(d, "files", EMAIL), path="/x")
    # the patterns latch holds are out of date: an app now serves /new/*; latch sends the root
    # app's token there, the gateway refuses it (401), curl prints it as it came, latch says so
    apps.append(app("new", [f"{h}/new/*"]))
    d.reload(cfg)
    ak.wait_until(lambda: get(d.port, "/cdn-cgi/access/app?path=/new/x", host=h).status == 200, 10)
    p = c.run("--no-browser", "--timeout", "2", "curl", "-sS", f"http://{h}/new/x", browser="forbidden")
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    assert json.loads(p.stdout)["error"] == "login_required", p.stdout  # curl's output untouched
    assert "refused the token" in p.stderr and "another app" in p.stderr, p.stderr
    rec = c.stored(h, root)
    assert rec["app_token"] is None and "routes" not in rec, rec  # forgotten, patterns dropped
    # with curl failing on its own (-f: 22), curl's status stays
    c.put_token(h, "files", root, ak.issue(d, "files", EMAIL), path="/x")
    rec = json.loads((c.store / f"{h}.json").read_text())
    rec["routes"] = [r for r in rec["routes"] if r["pattern"].endswith("/*") and "/new/" not in r["pattern"]]
    (c.store / f"{h}.json").write_text(json.dumps(rec))
    p = c.run("curl", "-sSf", f"http://{h}/new/x", browser="forbidden")
    assert p.returncode == 22 and "refused the token" in p.stderr, (p.returncode, p.stderr)
    # the person's own -D file is read for it (and keeps its content); an origin's own 401 is not
    # the gateway's: exit 0, no word
    c.put_token(h, "files", root, ak.issue(d, "files", EMAIL), path="/x")
    time.sleep(1.1)
    ak.cli(d, "revoke", "--app", "files", check=True)
    ak.wait_until(lambda: get(d.port, "/", host=h, headers=[("cf-access-token", c.stored(h, root)["app_token"])]).status == 401, 5)
    dump = tmp_path / "headers.txt"
    p = c.run("curl", "-sS", "-D", str(dump), "-o", "/dev/null", f"http://{h}/y", browser="forbidden")
    assert p.returncode == 4 and "revoked" in p.stderr, (p.returncode, p.stderr)
    assert dump.read_text().startswith("HTTP/1.1 401"), dump.read_text()


def test_origin_own_401_is_not_the_gateway(latchd, cli_factory):
    """An API's own 401 (its Basic challenge) passes as curl's answer: exit 0, no word."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="api"')
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"no\n")

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = free_port()
        h = f"api.localhost:{port}"
        a = app("api", [h])
        a["origin"] = f"http://127.0.0.1:{srv.server_address[1]}"
        d = latchd(gateway_config(port, [a]), port=port)
        c = cli_factory(d)
        c.put_token(h, "api", aud_at(d, h, "/"), ak.issue(d, "api", EMAIL))
        p = c.run("curl", "-sS", "-w", "%{http_code}", f"http://{h}/", browser="forbidden")
        assert p.returncode == 0 and p.stdout == "no\n401" and p.stderr == "", (p.returncode, p.stdout, p.stderr)
    finally:
        srv.shutdown()
