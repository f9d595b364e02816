"""Helpers for the command-line black-box tests (test_cli_*.py): the real `latch` binary run
against a real latchd, with its browser step done by headless Chromium (cli_browser.mjs through
a $BROWSER script that the test writes into its own temp dir), a browser script that fails the
test if it is ever started, tokens written into the CLI's store for tests that are not about the
login itself, recording and redirecting HTTP servers, and libsodium's sealed boxes through ctypes
(the same library latch uses, but driven from Python, never through latch's code)."""

import base64
import ctypes
import ctypes.util
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest

from harness import ROOT, free_port

HERE = Path(__file__).resolve().parent
LATCH = os.environ.get("LATCH") or str(ROOT / "build" / "latch")
NODE = os.environ.get("NODE", "node")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CLI_BROWSER = HERE / "cli_browser.mjs"
EMAIL = "carol@example.com"
CODE_RE = re.compile(r"shows the code ([0-9A-Z]{4}-[0-9A-Z]{4})")
URL_RE = re.compile(r"^\s+(https?://\S+/cdn-cgi/access/cli\?\S+)\s*$", re.M)
LOCAL_RE = re.compile(r"open (http://127\.0\.0\.1:\d+/) in a browser on this machine")


def have_browser():
    return (HERE.parent / "node_modules" / "playwright-core").is_dir() and os.path.exists(CHROMIUM)


needs_browser = pytest.mark.skipif(not have_browser(),
                                   reason="needs chromium and tests/node_modules/playwright-core")


# --------------------------------------------------------------------------------------------
# a gateway for the CLI: one-time PIN by the console mailer, apps that admit example.com

def person_app(name, host, port, session=None, include=None, origin="echo"):
    a = {"name": name, "domains": [f"{host}:{port}"], "origin": origin,
         "policies": [{"name": f"{name}-staff", "decision": "allow",
                       "include": include or [{"email_domain": "example.com"}]}]}
    if session:
        a["session_duration"] = session
    return a


def gateway_config(port, apps, **extra):
    cfg = {"auth_domain": f"auth.localhost:{port}",
           "identity_providers": [{"name": "email-code", "type": "onetimepin", "mail": "console",
                                   "from": "access@example.com"}],
           "apps": apps}
    cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------------------------
# the command line, its store and its browsers

class Cli:
    """One user's `latch`: its own XDG_CONFIG_HOME and HOME, browser scripts in its temp dir.
    .run(*args) runs latch and returns CompletedProcess (text); .browser_calls() lists the
    URLs $BROWSER was started with; .records() the JSON lines cli_browser.mjs appended."""

    def __init__(self, tmp, d):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.d = d
        self.home = self.tmp / "home"
        self.home.mkdir(exist_ok=True)
        self.xdg = self.tmp / "xdg"
        self.store = self.xdg / "latch"
        self.calls = self.tmp / "browser-calls.log"
        self.record = self.tmp / "browser-records.jsonl"
        self.forbidden_calls = self.tmp / "forbidden-browser-calls.log"
        self.pids = self.tmp / "browser-pids"
        self.extra_env = {}  # added to every run's and browse's environment (e.g. LATCH_TEST_HOST_RULES)
        self.good = self._script("browser-ok.sh", f"""#!/bin/sh
echo "$$ $1" >> '{self.calls}'
echo $$ >> '{self.pids}'
exec '{NODE}' '{CLI_BROWSER}' "$1" >> '{self.tmp}/browser.out' 2>&1
""")
        self.forbidden = self._script("browser-forbidden.sh", f"""#!/bin/sh
echo "$1" >> '{self.forbidden_calls}'
exit 1
""")

    def _script(self, name, text):
        p = self.tmp / name
        p.write_text(text)
        p.chmod(0o755)
        return str(p)

    def env(self, browser="good", **extra):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("LATCH_", "BROWSER", "DISPLAY", "WAYLAND", "SSH_", "CURL_HOME"))}
        e.update({"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.xdg),
                  "LATCH_TEST_LATCHD_STDERR": str(self.d.stderr_path),
                  "LATCH_TEST_RECORD": str(self.record), "LATCH_TEST_EMAIL": EMAIL,
                  "CHROMIUM": CHROMIUM})
        e.update({k: str(v) for k, v in self.extra_env.items()})
        if browser == "good":
            e["BROWSER"] = self.good
        elif browser == "forbidden":
            e["BROWSER"] = self.forbidden
        elif browser:
            e["BROWSER"] = browser
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def run(self, *args, browser="good", timeout=60, env=None, umask=None, **kw):
        e = self.env(browser, **(env or {}))
        pre = (lambda: os.umask(umask)) if umask is not None else None
        return subprocess.run([LATCH, *args], capture_output=True, text=True, env=e,
                              timeout=timeout, preexec_fn=pre, **kw)

    def popen(self, *args, browser="good", env=None):
        return subprocess.Popen([LATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env(browser, **(env or {})))

    def browser_calls(self):
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def forbidden_browser_calls(self):
        return self.forbidden_calls.read_text().splitlines() if self.forbidden_calls.exists() else []

    def records(self, n=None, timeout=30.0):
        """cli_browser.mjs's records; with n, waits until there are at least n."""
        deadline = time.monotonic() + timeout
        while True:
            recs = ([json.loads(l) for l in self.record.read_text().splitlines() if l.strip()]
                    if self.record.exists() else [])
            if n is None or len(recs) >= n or time.monotonic() > deadline:
                return recs
            time.sleep(0.1)

    def browse(self, url, mode="authorize", expect_code=None, cookies_out=None, timeout=60):
        """Runs cli_browser.mjs on `url` in the foreground (the browser 'elsewhere')."""
        e = self.env(None, LATCH_TEST_MODE=mode)
        if expect_code:
            e["LATCH_TEST_EXPECT_CODE"] = expect_code
        if cookies_out:
            e["LATCH_TEST_COOKIES_OUT"] = str(cookies_out)
        p = subprocess.run([NODE, str(CLI_BROWSER), url], capture_output=True, text=True, env=e,
                           timeout=timeout)
        recs = self.records()
        assert recs, f"cli_browser.mjs left no record: {p.stdout}{p.stderr}"
        return p.returncode, recs[-1]

    def stored(self, host, aud=None):
        """The store's record of an origin (host[:port]) with, for convenience, "app_token",
        "app" and "aud" of the app `aud` (by default: its only or first app); None when none."""
        p = self.store / f"{host}.json"
        if not p.exists():
            return None
        rec = json.loads(p.read_text())
        apps = rec.get("apps") or {}
        pick = aud if aud in apps else (next(iter(apps)) if apps and aud is None else None)
        app = apps.get(pick) or {}
        rec.update({"aud": pick, "app": app.get("app"), "app_token": app.get("app_token")})
        return rec

    def stored_org(self):
        """The org token stored for the test gateway's auth domain, or None."""
        p = self.store / f"org@auth.localhost:{self.d.port}.json"
        return json.loads(p.read_text())["org_token"] if p.exists() else None

    def put_token(self, host, app, aud, token, scheme="http", path="/"):
        """Writes a store record as latch does (SPEC.md §7: one 0600 file per origin, naming the
        origin its tokens were issued for, each app's token under its AUD, with the host's
        patterns, which the gateway gives for a valid token: GET /cdn-cgi/access/app). aud None:
        the app's at `path`, as the gateway says."""
        import urllib.parse
        import urllib.request
        self.store.mkdir(parents=True, exist_ok=True, mode=0o700)
        auth = self.d.port
        name, _, port = host.partition(":")
        port = int(port or (443 if scheme == "https" else 80))
        q = urllib.parse.quote(path, safe="/")
        req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/cdn-cgi/access/app?path={q}",
                                     headers={"Host": host, "cf-access-token": token})
        import ssl
        ctx = ssl._create_unverified_context() if scheme == "https" else None
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            info = json.load(r)
        aud = aud or info["aud"]
        assert info.get("token") == "ok" and info["aud"] == aud, info
        p = self.store / f"{host}.json"
        rec = json.loads(p.read_text()) if p.exists() else {
            "version": 2, "host": host, "origin": f"{scheme}://{name}:{port}", "apps": {}}
        rec.update({"auth_domain": f"auth.localhost:{auth}", "auth_url": f"http://auth.localhost:{auth}",
                    "auth_origin": f"http://auth.localhost:{auth}", "routes": info["routes"]})
        rec["apps"][aud] = {"app": app, "app_token": token}
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f)

    def wait_browsers_done(self, timeout=40.0):
        """Waits for the browsers $BROWSER started to exit (they outlive latch: double fork)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [p for p in self._pids() if _alive(p)]:
                return
            time.sleep(0.1)

    def _pids(self):
        if not self.pids.exists():
            return []
        return [int(x) for x in self.pids.read_text().split()]

    def cleanup(self):
        """Stops, by pid, every browser this Cli's scripts started that is still running."""
        for pid in self._pids():
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def cli_factory(tmp_path):
    made = []

    def make(d, name="user"):
        c = Cli(tmp_path / f"cli-{name}{len(made)}", d)
        made.append(c)
        return c

    yield make
    for c in made:
        c.cleanup()


def printed(stderr):
    """(code, url) that latch printed for the person to check and open: the confirmation URL
    (--no-browser, or no browser could be started), else the loopback redirector's address."""
    c = CODE_RE.search(stderr)
    u = URL_RE.search(stderr) or LOCAL_RE.search(stderr)
    return (c.group(1) if c else None), (u.group(1) if u else None)


def read_until_printed(p, timeout=20.0):
    """The stderr of a running latch (Popen) up to the line that shows the confirmation URL."""
    err = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "/cdn-cgi/access/cli?" not in err:
        line = p.stderr.readline()
        if not line:
            break
        err += line
    return err


def self_signed(tmp_path, *names):
    """A self-signed certificate for `names` (the first is its CN): (key path, cert path)."""
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    san = ",".join(f"DNS:{n}" for n in names)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
                    str(key), "-out", str(crt), "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=60)
    return key, crt


def tls_gateway(latchd, tmp_path, plain_apps=lambda port: []):
    """A gateway with a plain listener and a TLS one (self-signed for api.localhost), its app
    `api` on the TLS port, plain_apps(port) on the plain one: (d, "api.localhost:TLSPORT", cert)."""
    from harness import free_port
    key, crt = self_signed(tmp_path, "api.localhost")
    port, tport = free_port(), free_port()
    cfg = gateway_config(port, [person_app("api", "api.localhost", tport), *plain_apps(port)])
    cfg["listen"] = [{"address": f"127.0.0.1:{port}"},
                     {"address": f"127.0.0.1:{tport}", "tls": {"cert": str(crt), "key": str(key)}}]
    return latchd(cfg, port=port, extra_ports=[tport]), f"api.localhost:{tport}", crt


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def jwt_claims(tok):
    import base64
    part = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def auth_requests(d, since=0):
    """Request-log entries past the first `since` that reached the gateway's own endpoints."""
    return [e for e in d.log_lines()[since:]
            if (e.get("host") or "").startswith("auth.localhost") or
            (e.get("path") or "").startswith("/cdn-cgi/")]


# --------------------------------------------------------------------------------------------
# libsodium sealed boxes (crypto_box_seal), through ctypes

class Sodium:
    def __init__(self):
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        self.lib = ctypes.CDLL(name)
        assert self.lib.sodium_init() >= 0
        self.PK = self.lib.crypto_box_publickeybytes()
        self.SK = self.lib.crypto_box_secretkeybytes()
        self.SEAL = self.lib.crypto_box_sealbytes()

    def keypair(self):
        pk, sk = ctypes.create_string_buffer(self.PK), ctypes.create_string_buffer(self.SK)
        assert self.lib.crypto_box_keypair(pk, sk) == 0
        return pk.raw, sk.raw

    def seal(self, msg, pk):
        out = ctypes.create_string_buffer(len(msg) + self.SEAL)
        assert self.lib.crypto_box_seal(out, msg, ctypes.c_ulonglong(len(msg)), pk) == 0
        return out.raw

    def open(self, box, pk, sk):
        """The plaintext, or None when the box does not open with this key pair."""
        if len(box) < self.SEAL:
            return None
        out = ctypes.create_string_buffer(max(1, len(box) - self.SEAL))
        rc = self.lib.crypto_box_seal_open(out, box, ctypes.c_ulonglong(len(box)), pk, sk)
        return out.raw[:len(box) - self.SEAL] if rc == 0 else None


def b64u(b):
    import base64
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


# --------------------------------------------------------------------------------------------
# small HTTP servers: one that records every request, one that redirects

class Recorder:
    """Records every request head it receives (any Host) and answers 200 'recorded'."""

    def __init__(self, redirects=None):
        self.redirects = dict(redirects or {})
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                text = head.decode("latin-1")
                with self.lock:
                    self.heads.append(text)
                path = text.split(" ")[1] if " " in text else "/"
                loc = self.redirects.get(path.split("?")[0])
                if loc:
                    c.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + loc.encode() +
                              b"\r\nContent-Length: 0\r\n\r\n")
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nrecorded\n")
        except OSError:
            pass
        finally:
            c.close()

    def received(self):
        with self.lock:
            return list(self.heads)

    def close(self):
        self.closing = True
        self.sock.close()


@pytest.fixture
def recorder_factory():
    made = []

    def make(**kw):
        r = Recorder(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def free_ports(n):
    return [free_port() for _ in range(n)]


# --------------------------------------------------------------------------------------------
# the handoff at the HTTP level (SPEC.md §7), for tests that play the CLI or a browser themselves

def otp_session(d, email, host, client=None):
    """A Client signed in to the org as `email` by the one-time PIN (console mailer), through
    the app at `host` (host:port): it holds the auth domain's CF_Authorization cookie."""
    from browser import Client, console_code, form_fields
    cl = client or Client()
    auth = f"http://auth.localhost:{d.port}"
    r, chain = cl.follow(f"http://{host}/")
    assert r.status == 200 and "email" in r.text, (r, chain)
    csrf = form_fields(r.text)["csrf"]
    n = len(re.findall(r"one-time PIN for " + re.escape(email) + " ", d.stderr()))
    p = cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
    assert p.status == 200, p
    p = cl.post(f"{auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": console_code(d, email, after=n)})
    assert p.status == 302, p
    cl.follow(urljoin(auth + "/", p.location))
    assert cl.get_cookie("auth.localhost", "CF_Authorization"), cl.jar.keys()
    return cl


class Handoff:
    """One CLI login at the HTTP level: a key pair (libsodium, through ctypes), the link latch
    would hand to its browser, and the poll with its proof of possession of the key."""

    def __init__(self, d, host, sodium=None):
        self.na = sodium or Sodium()
        self.pk, self.sk = self.na.keypair()
        self.key = b64u(self.pk)
        self.d = d
        self.auth = f"http://auth.localhost:{d.port}"
        self.nonce = b64u(os.urandom(16))  # the request's nonce, sealed into the box
        self.link = f"{self.auth}/cdn-cgi/access/cli?host={host}&key={self.key}&n={self.nonce}"

    def open(self, client):
        """The browser opens the link: (its last answer, the chain of answers)."""
        return client.follow(self.link)

    def confirm(self, client, page, origin=True):
        """POSTs the confirmation form of `page` (a confirmation page) from `client`."""
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        hdrs = [("Origin", self.auth)] if origin else []
        return client.post(f"{self.auth}/cdn-cgi/access/cli", fields, headers=hdrs)

    def challenge(self, key=None):
        """GET transfer/<key> with no proof: (status, the proof opened with our key or None)."""
        st, body, _ = transfer(self.d, key or self.key, timeout=10)
        if st != 401:
            return st, None
        box = base64.urlsafe_b64decode(json.loads(body)["challenge"] + "==")
        plain = self.na.open(box, self.pk, self.sk)
        return st, plain.decode() if plain else None

    def take(self, proof=None, key=None, timeout=40):
        """Polls with a proof (ours by default): (status, the box opened with our key or the raw
        body, seconds)."""
        if proof is None:
            _, proof = self.challenge()
        st, body, took = transfer(self.d, key or self.key, proof=proof, timeout=timeout)
        if st == 200:
            plain = self.na.open(body, self.pk, self.sk)
            return st, json.loads(plain) if plain else body, took
        return st, body, took


def transfer(d, key, proof=None, timeout=40):
    """GET transfer/<key> on the auth domain, with `Authorization: Latch-Proof <proof>` when
    given: (status, body bytes, seconds it took)."""
    import urllib.error
    import urllib.request
    hdrs = {"Host": f"auth.localhost:{d.port}"}
    if proof:
        hdrs["Authorization"] = f"Latch-Proof {proof}"
    req = urllib.request.Request(f"http://127.0.0.1:{d.port}/cdn-cgi/access/transfer/{key}", headers=hdrs)
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - t0
