"""Helpers for the browser-login black-box tests (test_login_*.py): a real OpenID Connect
provider (node, oidc-provider: idp/provider.mjs), a real SMTP server (aiosmtpd) that records the
mail it receives, a real browser (chromium through playwright-core: idp/browser.mjs, driven step
by step over JSON lines), and a small HTTP client with a cookie jar that talks to latchd on
loopback whatever *.localhost name a URL carries (this machine's resolver knows none of them).

Every process is started on free loopback ports in the test's own temp dir and stopped by its
pid. Fixtures (import them into a test module): `idp_factory`, `smtp_sink`, `browser`."""

import base64
import http.client
import json
import os
import re
import select
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest

from harness import ROOT, free_port, stop_pid, wait_port

HERE = Path(__file__).resolve().parent
NODE = os.environ.get("NODE", "node")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "build" / "screenshots"
TOKEN_RE = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def have_browser():
    return (HERE.parent / "node_modules" / "playwright-core").is_dir() and os.path.exists(CHROMIUM)


def have_idp():
    return (HERE.parent / "node_modules" / "oidc-provider").is_dir()


# --------------------------------------------------------------------------------------------
# the OpenID Connect provider

DEFAULT_USERS = {
    "alice": {"email": "alice@example.com", "email_verified": True, "name": "Alice Example",
              "groups": ["engineering", "staff"], "amr": ["pwd", "mfa"]},
    "bob": {"email": "bob@example.com", "email_verified": True, "name": "Bob Example",
            "groups": ["sales"], "amr": ["pwd"]},
    "mallory": {"email": "mallory@example.com", "email_verified": False, "groups": ["engineering"]},
}


class Idp:
    """node idp/provider.mjs on a free loopback port. .issuer, .secret_file, .requests(path)."""

    def __init__(self, tmp, redirect_uri, users=None, secret="latch-test-client-secret-42",
                 issuer_path="", mount=""):
        """issuer_path: the issuer is http://127.0.0.1:PORT<issuer_path>; mount: a path prefix
        under which the provider also answers (provider.mjs --mount)."""
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = self.base + issuer_path
        self.secret = secret
        self.secret_file = self.tmp / "client_secret"
        self.secret_file.write_text(secret + "\n")
        self.users_file = self.tmp / "users.json"
        self.users_file.write_text(json.dumps(users or DEFAULT_USERS))
        self.log = self.tmp / "idp.log"
        self.out = open(self.tmp / "idp.out", "wb")
        self.proc = subprocess.Popen(
            [NODE, str(HERE / "idp" / "provider.mjs"), "--port", str(self.port), "--secret-file",
             str(self.secret_file), "--users", str(self.users_file), "--redirect-uri", redirect_uri,
             "--log", str(self.log), "--issuer", self.issuer] + (["--mount", mount] if mount else []),
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, 20, self.proc)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- provider output:\n{self.output()}") from None

    def output(self):
        return (self.tmp / "idp.out").read_text(errors="replace")

    def entries(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def requests(self, path=None):
        return [e for e in self.entries() if "method" in e and (path is None or e["path"] == path)]

    def stop(self):
        stop_pid(self.proc, signal.SIGTERM, 5)
        self.out.close()

    def idp_config(self, name="corp"):
        return {"name": name, "type": "oidc", "issuer": self.issuer, "client_id": "latch",
                "client_secret_file": str(self.secret_file),
                "scopes": ["openid", "email", "profile", "groups"], "groups_claim": "groups"}


@pytest.fixture
def idp_factory(tmp_path):
    """make(latchd_port, users=None, name="idp", callbacks=None): a provider whose registered
    redirect URI is latchd's shared callback (one OpenID Connect provider configured), or, with
    callbacks=[provider name, …] (several configured), each one's own callback/<name>."""
    made = []

    def make(latchd_port, users=None, name="idp", callbacks=None, **kw):
        base = f"http://auth.localhost:{latchd_port}/cdn-cgi/access/callback"
        uris = ",".join(f"{base}/{n}" for n in callbacks) if callbacks else base
        p = Idp(tmp_path / f"{name}{len(made)}", uris, users=users, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


# --------------------------------------------------------------------------------------------
# the SMTP server

class SmtpSink:
    """A real SMTP server (aiosmtpd's Controller in a thread of this process) on a free loopback
    port; every message is kept (and appended to `path` as JSON lines)."""

    def __init__(self, path):
        from aiosmtpd.controller import Controller
        self.path = Path(path)
        self.messages = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                m = {"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                     "data": envelope.content.decode("utf-8", "replace")}
                with sink.lock:
                    sink.messages.append(m)
                    with open(sink.path, "a") as f:
                        f.write(json.dumps(m) + "\n")
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def wait_code(self, to, timeout=10.0, after=0):
        """The 8-digit code of the first message to `to` past the first `after` messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                msgs = [m for m in self.messages if to in m["to"]][after:]
            for m in msgs:
                g = re.search(r"^Subject: Your sign-in code: (\d{8})\s*$", m["data"], re.M)
                assert g, m["data"]
                return g.group(1), m
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to} within {timeout}s; got {self.messages}")

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp_sink(tmp_path):
    s = SmtpSink(tmp_path / "mail.jsonl")
    yield s
    s.stop()


def console_code(d, email, timeout=10.0, after=0):
    """The PIN the console mailer printed to latchd's stderr for `email` (the `after`-th next)."""
    pat = re.compile(r"one-time PIN for " + re.escape(email) + r" \(app [^)]*\): (\d{8})")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pat.findall(d.stderr())
        if len(found) > after:
            return found[after]
        time.sleep(0.05)
    raise AssertionError(f"no PIN for {email} in latchd's stderr:\n{d.stderr()[-2000:]}")


# --------------------------------------------------------------------------------------------
# the browser

class BrowserError(AssertionError):
    pass


class Browser:
    """One chromium (node idp/browser.mjs); contexts are separate cookie jars, by name."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.err = open(self.tmp / "browser.stderr", "wb")
        self.proc = subprocess.Popen([NODE, str(HERE / "idp" / "browser.mjs")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env={**os.environ, "CHROMIUM": CHROMIUM})
        self.n = 0
        self.buf = b""
        ready = self._read(60)
        assert ready.get("ready"), ready

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"browser did not answer within {timeout}s")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise BrowserError("browser exited:\n" +
                                       (self.tmp / "browser.stderr").read_text(errors="replace"))
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def call(self, op, timeout=40, **kw):
        self.n += 1
        self.proc.stdin.write((json.dumps({"id": self.n, "op": op, **kw}) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            ans = self._read(timeout)
            if ans.get("id") == self.n:
                break
        if not ans.get("ok"):
            raise BrowserError(f"{op} {kw}: {ans.get('error')}")
        return ans

    # conveniences
    def goto(self, url, ctx="main"):
        return self.call("goto", ctx=ctx, url=url)

    def fill(self, selector, value, ctx="main"):
        return self.call("fill", ctx=ctx, selector=selector, value=value)

    def submit(self, selector="button[type=submit]", ctx="main"):
        return self.call("submit", ctx=ctx, selector=selector)

    def page(self, ctx="main"):
        return self.call("page", ctx=ctx)

    def cookies(self, ctx="main"):
        return self.call("cookies", ctx=ctx)["cookies"]

    def cookie(self, name, domain, ctx="main"):
        for c in self.cookies(ctx):
            if c["name"] == name and c["domain"].lstrip(".") == domain:
                return c
        return None

    def frames(self, ctx="main"):
        return self.call("frames", ctx=ctx)["frames"]

    def eval(self, expr, ctx="main"):
        """The value of a JavaScript expression evaluated in the current page."""
        return self.call("eval", ctx=ctx, expr=expr)["value"]

    def fits_phone(self, ctx):
        """Asserts the current page is laid out for the phone context's 390 px screen (it has a
        mobile viewport: a page without one is laid out 980 px wide and shrunk), nothing runs off
        its right edge, and its text is at least 13 px."""
        m = self.eval("({w: window.innerWidth, sw: document.documentElement.scrollWidth, "
                      "fs: Math.min(...[...document.querySelectorAll('p,pre,a,button,label,small,h1')]"
                      ".map(e => parseFloat(getComputedStyle(e).fontSize)).concat([99]))})", ctx)
        assert m["w"] == 390 and m["sw"] <= 390 and m["fs"] >= 13, (self.page(ctx)["url"], m)

    def screenshot(self, name, ctx="main", full_page=True):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.call("screenshot", ctx=ctx, path=str(path), full_page=full_page)
        return path

    def context(self, ctx, viewport=None, phone=False):
        """A new cookie jar; phone=True: a 390 px wide touch screen that honours the page's
        <meta name=viewport> (as a real phone does: a page without one is laid out 980 px
        wide and shrunk)."""
        kw = {"viewport": viewport} if viewport else {}
        return self.call("context", ctx=ctx, phone=phone, **kw)

    def close_context(self, ctx):
        return self.call("close_context", ctx=ctx)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        stop_pid(self.proc, signal.SIGTERM, 10)
        self.err.close()


@pytest.fixture
def browser(tmp_path):
    if not have_browser():
        pytest.skip("needs chromium and tests/node_modules (npm ci in tests/)")
    b = Browser(tmp_path / "browser")
    yield b
    b.close()


# --------------------------------------------------------------------------------------------
# an HTTP client with a cookie jar (for attacks: exact control over every request)

class Resp:
    def __init__(self, status, headers, body, url):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def location(self):
        return self.header("location")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Resp {self.status} {self.url} loc={self.location} {self.body[:300]!r}>"


def parse_set_cookie(line):
    """'n=v; Path=/; Max-Age=3; HttpOnly' -> (name, value, {attr-lower: value or True})."""
    parts = [p.strip() for p in line.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), value.strip(), attrs


class Client:
    """Connects to 127.0.0.1 at the URL's port and sends the URL's host[:port] as Host. Keeps
    cookies per host name (no port, as browsers do), honouring Path and Max-Age. `addr` (may be
    changed between requests) sends *.localhost names to another loopback address instead: with
    gateway nodes on 127.0.0.1 and 127.0.0.2, one cookie jar walks from one node to the other."""

    def __init__(self, tls=False, addr=None):
        self.jar = {}   # (host, name) -> (value, path, expires)
        self.tls = tls
        self.addr = addr
        self.log = []   # every (method, url, status)

    def cookie_header(self, host, path):
        now = time.monotonic()
        out = []
        for (h, n), (v, p, exp) in list(self.jar.items()):
            if h != host:
                continue
            if exp is not None and exp <= now:
                del self.jar[(h, n)]
                continue
            if path == p or path.startswith(p.rstrip("/") + "/") or p == "/":
                out.append(f"{n}={v}")
        return "; ".join(out)

    def set_cookie(self, host, name, value, path="/"):
        self.jar[(host, name)] = (value, path, None)

    def get_cookie(self, host, name):
        v = self.jar.get((host, name))
        return v[0] if v else None

    def request(self, method, url, headers=(), body=None, cookies=True, accept="text/html"):
        u = urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        ip = self.addr if self.addr and (u.hostname or "").endswith("localhost") else "127.0.0.1"
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(ip, port, timeout=15, context=ctx)
        else:
            conn = http.client.HTTPConnection(ip, port, timeout=15)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        hdrs = {"Host": u.netloc, "User-Agent": "latch-tests"}
        if accept:
            hdrs["Accept"] = accept
        if cookies:
            ch = self.cookie_header(u.hostname, u.path or "/")
            if ch:
                hdrs["Cookie"] = ch
        for k, v in headers:
            hdrs[k] = v
        if isinstance(body, dict):
            body = urlencode(body)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            conn.request(method, target, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            resp = Resp(r.status, r.getheaders(), data, url)
        finally:
            conn.close()
        for line in resp.all("set-cookie"):
            name, value, attrs = parse_set_cookie(line)
            path = attrs.get("path", "/") if isinstance(attrs.get("path"), str) else "/"
            ma = attrs.get("max-age")
            if ma is not None and int(ma) <= 0:
                self.jar.pop((u.hostname, name), None)
            else:
                exp = time.monotonic() + int(ma) if ma is not None else None
                self.jar[(u.hostname, name)] = (value, path, exp)
        self.log.append((method, url, resp.status))
        return resp

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, form, **kw):
        return self.request("POST", url, body=form, **kw)

    def follow(self, url, max_hops=20, stop=None, **kw):
        """GETs url and follows redirects; `stop(url)` true ends before requesting that URL.
        Returns (last response, list of every response)."""
        chain = []
        r = None
        for _ in range(max_hops):
            if stop and stop(url):
                return r, chain
            r = self.get(url, **kw)
            chain.append(r)
            if r.status in (301, 302, 303, 307, 308) and r.location:
                url = urljoin(url, r.location)
                continue
            return r, chain
        raise AssertionError(f"too many redirects: {chain}")


def form_fields(html):
    """The hidden inputs of the first form with action .../otp (name -> value)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def oidc_login(client, start_url, account, stop_at_callback=False, idp="corp"):
    """Signs in through the test provider's login page with `client` (no browser), choosing
    provider `idp` when the login page offers a choice. Returns (final response, chain); with
    stop_at_callback, (callback URL, chain) without calling it."""
    r, chain = client.follow(start_url)
    pick = re.search(r'href="(/cdn-cgi/access/start\?idp=' + re.escape(idp) + r')"', r.text)
    if r.status == 200 and pick:  # the login page offers a choice: take the corp provider
        r, more = client.follow(urljoin(r.url, pick.group(1)))
        chain += more
    m = re.search(r'action="(/interaction/[^"]+/login)"', r.text)
    assert r.status == 200 and m, (r, [c.url for c in chain])
    url = urljoin(r.url, m.group(1))
    p = client.post(url, {"login": account})
    chain.append(p)
    assert p.status in (302, 303), p
    nxt = urljoin(url, p.location)
    stop = (lambda u: "/cdn-cgi/access/callback" in u) if stop_at_callback else None
    r2, c2 = client.follow(nxt, stop=stop)
    chain += c2
    if stop_at_callback:
        cb = urljoin(c2[-1].url, c2[-1].location)
        assert "/cdn-cgi/access/callback" in cb, [c.url for c in chain]
        return cb, chain
    return r2, chain


def jwt_claims(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def login_config(port, idps, apps, **extra):
    """A latchd config dict for the login tests (harness.Latchd fills listen, state_dir, logs)."""
    cfg = {"auth_domain": f"auth.localhost:{port}", "identity_providers": idps, "apps": apps}
    cfg.update(extra)
    return cfg


def person_app(name, host, port, include=None, require=None, session=None, allowed_idps=None,
               policy_session=None):
    pol = {"name": f"{name}-people", "decision": "allow",
           "include": include or [{"email_domain": "example.com"}]}
    if require:
        pol["require"] = require
    if policy_session:
        pol["session_duration"] = policy_session
    app = {"name": name, "domains": [f"{host}:{port}"], "origin": "echo", "policies": [pol]}
    if session:
        app["session_duration"] = session
    if allowed_idps:
        app["allowed_idps"] = allowed_idps
    return app


def otp_idp(mail="console", name="email-code"):
    return {"name": name, "type": "onetimepin", "mail": mail, "from": "access@example.com"}


def qs(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
