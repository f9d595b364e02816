"""How `latch` is typed and what it says (SPEC.md §7): latch's options after the verb and the URL
as well as before it; for curl, a latch option among curl's gets a word saying where it goes, never
curl's "unknown option"; a browser is said to have opened only when it did (xdg-open without a
display fails, and the URL is printed); a URL without a scheme is https, for latch and for the
curl it runs; every error says what to do next, with the documented exit status."""

import json
import os
import time

import pytest

import authkit as ak
from clikit import (EMAIL, LATCH, cli_factory,  # noqa: F401 (fixture)
                    gateway_config, person_app, printed, tls_gateway)
from harness import free_port


def gateway(latchd):
    port = free_port()
    apps = [person_app("api", "api.localhost", port), person_app("api2", "api2.localhost", port)]
    return latchd(gateway_config(port, apps), port=port)


def abandon(d):
    """latchd still holds the long poll of a latch that gave up: stop it by its pid."""
    import signal
    d.stopped_by_test = True
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(10)
    d.close_files()


@pytest.mark.timeout(120)
def test_latch_options_after_the_verb_and_the_url(latchd, cli_factory):
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/")
    # --no-browser and --timeout after the URL: no browser, the URL printed, given up in ~2 s
    for args in (["login", url, "--no-browser", "--timeout", "2"], ["login", "--timeout=2", url, "--no-browser"],
                 ["--no-browser", "login", url, "--timeout", "2"], ["--timeout", "2", "--no-browser", "login", url]):
        t0 = time.monotonic()
        p = c.run(*args, browser="forbidden", timeout=60)
        took = time.monotonic() - t0
        assert p.returncode == 3, (args, p.returncode, p.stderr)
        code, shown = printed(p.stderr)
        assert code and shown and "/cdn-cgi/access/cli?" in shown and "open this URL" in p.stderr, (args, p.stderr)
        assert "--timeout" in p.stderr and took < 30, (args, took)
    assert c.forbidden_browser_calls() == [] and c.browser_calls() == []
    # apps and logout take them too (nothing to do: exits that say so)
    p = c.run("logout", url, "--no-browser", browser="forbidden")
    assert p.returncode == 0 and "nothing to end" in p.stderr, p.stderr
    p = c.run("token", url, "--timeout", "5", browser="forbidden")
    assert p.returncode == 5 and "latch login" in p.stderr, p.stderr
    # bad values and unknown options: usage (64), saying what is wrong
    for args in (["login", url, "--timeout", "0"], ["login", url, "--timeout", "x"], ["login", url, "--timeout"],
                 ["--timeout", "-1", "login", url], ["login", url, "--frob"], ["login", url, url + "x"],
                 ["token", "--all", url]):
        p = c.run(*args, browser="forbidden")
        assert p.returncode == 64 and p.stderr.startswith("latch"), (args, p.returncode, p.stderr)
    # curl: what follows the verb is curl's; a latch option there gets latch's word, not curl's
    for opt in (["--no-browser"], ["--timeout", "5"], ["--timeout=5"]):
        for args in ([*opt, url], [url, *opt]):
            p = c.run("curl", *args, browser="forbidden")
            assert p.returncode == 64, (args, p.returncode, p.stderr)
            assert "option of latch" in p.stderr and "before `curl`" in p.stderr, (args, p.stderr)
            assert "is not a curl" not in p.stderr and "curl: option" not in p.stderr, p.stderr
    abandon(d)


def test_browser_said_opened_only_when_it_did(latchd, cli_factory, tmp_path):
    d = gateway(latchd)
    c = cli_factory(d)
    url = d.url("api.localhost", "/")
    fake = tmp_path / "bin"
    fake.mkdir()
    path = f"{fake}:{os.environ['PATH']}"

    def run(browser, display=None, xdg=None):
        env = {"PATH": path}
        if display:
            env["DISPLAY"] = display
        if xdg is not None:
            (fake / "xdg-open").write_text(f"#!/bin/sh\necho \"$1\" >> '{tmp_path}/xdg-calls'\nexit {xdg}\n")
            (fake / "xdg-open").chmod(0o755)
        elif (fake / "xdg-open").exists():
            (fake / "xdg-open").unlink()
        return c.run("--timeout", "1", "login", url, browser=browser, env=env)

    # no $BROWSER, no display, not ssh: the system's xdg-open runs and fails (exit 3): the URL
    p = run(None)
    assert p.returncode == 3 and "a browser window opened" not in p.stderr, p.stderr
    assert "open this URL in a browser" in p.stderr and "/cdn-cgi/access/cli?" in p.stderr, p.stderr
    # a $BROWSER that fails at once, then an xdg-open that fails: the URL
    p = run("/bin/false", display=":99", xdg=4)
    assert p.returncode == 3 and "a browser window opened" not in p.stderr and "open this URL" in p.stderr, p.stderr
    assert (tmp_path / "xdg-calls").exists()
    # a $BROWSER that cannot be run at all: the URL
    p = run("/nonexistent/browser")
    assert "a browser window opened" not in p.stderr and "open this URL" in p.stderr, p.stderr
    # an xdg-open that hands the address on (exit 0) with a display: a browser opened
    p = run(None, display=":99", xdg=0)
    assert "a browser window opened" in p.stderr and "open this URL in a browser (on any device)" not in p.stderr, p.stderr
    # a browser that keeps running (a browser, not a launcher): opened
    (fake / "slow").write_text("#!/bin/sh\nsleep 5\n")
    (fake / "slow").chmod(0o755)
    p = run(str(fake / "slow"))
    assert "a browser window opened" in p.stderr, p.stderr
    abandon(d)


@pytest.mark.timeout(120)
def test_url_without_a_scheme_is_https(latchd, cli_factory, tmp_path):
    d, host, crt = tls_gateway(latchd, tmp_path, lambda port: [person_app("plain", "plain.localhost", port)])
    port = d.port
    c = cli_factory(d)
    tok = ak.issue(d, "api", EMAIL)
    c.put_token(host, "api", None, tok, scheme="https")
    env = {"LATCH_CA_BUNDLE": str(crt)}
    # curl is given the https URL: it reaches the TLS listener, with the https origin's token
    p = c.run("curl", "-sS", "--cacert", str(crt), f"{host}/bare?q=1", browser="forbidden", env=env)
    assert p.returncode == 0, (p.returncode, p.stderr)
    e = json.loads(p.stdout)
    assert e["path"] == "/bare" and e["headers"]["x-forwarded-proto"] == "https", e
    p = c.run("token", f"{host}/", browser="forbidden", env=env)
    assert p.returncode == 0 and p.stdout.strip() == tok, p.stderr
    p = c.run("login", host, browser="forbidden", env=env)
    assert p.returncode == 0 and f"logged in to {host} as {EMAIL}" in p.stderr, p.stderr
    # a token stored for a plain-http origin is not the bare name's (https) token
    ptok = ak.issue(d, "plain", EMAIL)
    c.put_token(f"plain.localhost:{port}", "plain", ak.aud_of(d, f"plain.localhost:{port}"), ptok)
    p = c.run("token", f"plain.localhost:{port}/", browser="forbidden")
    assert p.returncode == 5 and f"https://plain.localhost:{port}/" in p.stderr, p.stderr
    p = c.run("--timeout", "2", "curl", "-sS", f"plain.localhost:{port}/", browser="forbidden")
    assert p.returncode == 1 and "cannot reach" in p.stderr, (p.returncode, p.stderr)


def test_help_documents_exit_statuses(cli_factory, latchd):
    d = gateway(latchd)
    c = cli_factory(d)
    p = c.run("--help", browser="forbidden")
    assert p.returncode == 0
    for word in ("latch apps URL", "logout", "--no-browser", "--timeout", "without a scheme is https",
                 "0 ok", "1 error", "64 usage", "3 ", "4 refused", "5 no token", "curl's own status"):
        assert word in p.stdout, word
    for sub in ("login", "token", "logout", "apps"):
        p = c.run(sub, "--help", browser="forbidden")
        assert p.returncode == 0 and "usage" in p.stdout, (sub, p.stdout, p.stderr)
    man = open(os.path.join(os.path.dirname(LATCH), "..", "man", "latch.1")).read() \
        if os.path.exists(os.path.join(os.path.dirname(LATCH), "..", "man", "latch.1")) else None
    if man is not None:
        for word in ("apps", "cli\\-logout", "EXIT STATUS"):
            assert word in man, word


def test_usage_exit_status_is_the_same_in_latchd_and_latch(tmp_path):
    """Issue 12: a number means the same whichever program printed it (core/exitcode.h). A misused
    command line exits 64 (EX_USAGE) in both, and both --help texts and man pages say so."""
    import subprocess
    from harness import LATCHD
    root = os.path.join(os.path.dirname(LATCH), "..")
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    for prog, args in ((LATCH, ["--frob"]), (LATCH, ["frob"]), (LATCH, ["login"]),
                       (LATCHD, ["--frob"]), (LATCHD, ["frob"]), (LATCHD, ["check"])):
        p = subprocess.run([prog, *args], capture_output=True, text=True, env=env, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 64 and p.stderr, (prog, args, p.returncode, p.stderr)
    for prog in (LATCH, LATCHD):
        p = subprocess.run([prog, "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0 and "64 usage" in " ".join(p.stdout.split()), (prog, p.stdout)
    for page in ("latch.1", "latchd.8"):
        path = os.path.join(root, "man", page)
        if os.path.exists(path):
            text = open(path).read()
            status = text[text.index(".SH EXIT STATUS"):]
            assert ".B 64\n" in status, page
