"""A token reaches only the origin it was issued for (SPEC.md §7), whatever curl's arguments,
config files or environment say: `latch curl` against real curl, a real latchd and recording
origins on another port of the app's host name and on another host.

The option matrix is built from the installed curl's own table (`curl --help all`), not from a
list of known cases: for every option that takes a value, `latch curl <opt> <app> <other>`,
`latch curl <app> <opt> <other>` and `latch curl <opt> <other> <app>`; for every flag, the same
with the other URL also written without a scheme (curl accepts `host:port/path`). Then real
redirects (-L) to another port, another host and another scheme; .curlrc files in every place
curl reads them; -K files; proxies by option and by environment, for plain http and, through a
real CONNECT proxy, for https. Each time, no request carrying the token (header, cookie, or the
service token's headers when LATCH_CLIENT_ID/SECRET are set) reaches any origin but the app's.
The cleartext rule (plain http to this machine only) is tried for every command."""

import concurrent.futures
import json
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest

import authkit as ak
from clikit import (EMAIL, LATCH, Recorder, cli_factory,  # noqa: F401 (fixture)
                    gateway_config, person_app, recorder_factory, self_signed, tls_gateway)
from harness import free_port

SECRET = "s3cr3t-service-token-secret-for-the-matrix"


def curl_options():
    """(long name, short letter or None, takes a value) for each line of `curl --help all`."""
    out = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True, timeout=20).stdout
    opts = []
    for line in out.splitlines():
        m = re.match(r"^ (?:-(\S), )?\s*--(\S+)(?: ([<\[]))?", line)
        if m:
            opts.append((m.group(2), m.group(1), bool(m.group(3))))
    assert len(opts) > 200, out[:500]
    return opts


def carrying(head, token):
    """The credential headers a recorded request head carries: the token in any header, our
    header or cookie names, the service token's secret."""
    found = []
    for line in head.split("\r\n")[1:]:
        low = line.lower()
        if (token.split(".")[2] in line or SECRET in line or low.startswith("cf-access-token")
                or "cf_authorization" in low or low.startswith("cf-access-client")):
            found.append(line.split(":", 1)[0])
    return found


class Setup:
    """A gateway whose app `api` forwards to a redirecting recorder; recorders on another port
    of the app's host name and on another host; a token stored for the app's origin."""

    def __init__(self, latchd, cli_factory, recorder_factory, tmp_path):
        self.same = recorder_factory()      # api.localhost:<another port>
        self.other = recorder_factory()     # other.localhost:<port>
        self.port = free_port()
        self.host = f"api.localhost:{self.port}"
        self.app_url = f"http://{self.host}"
        self.same_url = f"http://api.localhost:{self.same.port}"
        self.other_url = f"http://other.localhost:{self.other.port}"
        self.origin = recorder_factory(redirects={
            "/to-port": f"{self.same_url}/landing",
            "/to-host": f"{self.other_url}/landing",
            "/to-self": "/landing",
        })
        apps = [person_app("api", "api.localhost", self.port, origin=f"http://127.0.0.1:{self.origin.port}")]
        self.d = latchd(gateway_config(self.port, apps), port=self.port)
        self.c = cli_factory(self.d)
        self.token = ak.issue(self.d, "api", EMAIL)
        self.c.put_token(self.host, "api", ak.aud_of(self.d, self.host), self.token)
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()

    def run(self, args, env=None, timeout=30):
        e = self.c.env("forbidden", **(env or {}))
        return subprocess.run([LATCH, "curl", *args], capture_output=True, text=True, env=e,
                              timeout=timeout, cwd=self.cwd, stdin=subprocess.DEVNULL)

    def leaks(self, recorders=None):
        out = []
        for r in recorders or (self.same, self.other):
            for head in r.received():
                found = carrying(head, self.token)
                if found:
                    out.append((head.split("\r\n")[0], found, head))
        return out


@pytest.fixture
def setup(latchd, cli_factory, recorder_factory, tmp_path):
    return Setup(latchd, cli_factory, recorder_factory, tmp_path)


def matrix(s, service=False):
    """Every curl option in the three positions; returns the failures as text. With a service
    token, `<opt> <app> <other>` for an option that takes a value is left out: curl itself then
    fetches only <other>, and a service token (LATCH_CLIENT_ID/SECRET) is bound to no origin,
    only to the one origin of each command line (latch has no record of where it belongs)."""
    app, same, other = s.app_url + "/m", s.same_url + "/m", s.other_url + "/m"
    lines = []
    for name, letter, takes in curl_options():
        spellings = [f"--{name}"] + ([f"-{letter}"] if letter else [])
        for opt in spellings:
            for o in (same, other):
                if not (service and takes):
                    lines.append([opt, app, o])
                lines.append([app, opt, o])
                lines.append([opt, o, app])
                if not takes:  # flags: the other URL also without a scheme
                    bare = o.split("://", 1)[1]
                    lines.append([opt, bare, app])
                    lines.append([app, opt, bare])
    env = {"LATCH_CLIENT_ID": "matrix.access", "LATCH_CLIENT_SECRET": SECRET} if service else None

    def one(i):
        args = ["-H", f"X-Case: {i}", "--max-time", "5", "-sS", *lines[i]]
        p = s.run(args, env=env)
        return i, p.returncode, p.stderr

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = dict((i, (rc, err)) for i, rc, err in ex.map(one, range(len(lines))))
    failures = []
    for first, found, head in s.leaks():
        m = re.search(r"\r\nX-Case: (\d+)", head)
        case = lines[int(m.group(1))] if m else "(no X-Case header)"
        failures.append(f"latch curl {' '.join(case) if m else case}: the token reached {first} in {found}")
    ran = sum(1 for rc, _ in results.values() if rc not in (64,))
    return failures, len(lines), ran


@pytest.mark.timeout(300)
def test_option_matrix_token_stays_on_its_origin(setup):
    s = setup
    failures, n, ran = matrix(s)
    assert not failures, "\n".join(failures[:30])
    # the matrix means something: curl did run for many of them, with the token, at the app
    admitted = [h for h in s.origin.received() if "cf-access-jwt-assertion:" in h.lower()]
    assert n > 1500 and ran > 200 and len(admitted) > 100, (n, ran, len(admitted))


@pytest.mark.timeout(300)
def test_option_matrix_service_token_stays_on_its_origin(setup):
    s = setup
    failures, n, ran = matrix(s, service=True)
    assert not failures, "\n".join(failures[:30])
    assert n > 1000 and ran > 200, (n, ran)


def test_redirects_keep_the_token_on_its_origin(setup, tmp_path):
    """-L: the token goes as a Cookie header, which curl (>= 7.83, CVE-2022-27776) drops when a
    redirect changes the host, the port or the scheme; a redirect within the origin keeps it."""
    s = setup
    # the scheme: a TLS recorder for api.localhost on another port, trusted through --cacert
    key, crt = self_signed(tmp_path, "api.localhost")
    tls = TlsRecorder(crt, key)
    try:
        s.origin.redirects["/to-scheme"] = f"https://api.localhost:{tls.port}/landing"
        for path, rec in (("/to-port", s.same), ("/to-host", s.other), ("/to-scheme", tls)):
            p = s.run(["-sSL", "--cacert", str(crt), "--max-time", "10", s.app_url + path])
            assert p.returncode == 0 and "recorded" in p.stdout, (path, p.returncode, p.stderr)
            got = [h for h in rec.received() if " /landing " in h.split("\r\n")[0]]
            assert got, f"{path}: curl did not follow the redirect"
            assert not [h for h in got if carrying(h, s.token)], (path, got)
        # the same with a second URL of the app's own origin (the review's case (c))
        p = s.run(["-sSL", "--max-time", "10", s.app_url + "/to-port", s.app_url + "/plain"])
        assert p.returncode == 0, p.stderr
        # the positive control: a redirect within the origin keeps the cookie (the gateway admits)
        n = len(s.origin.received())
        p = s.run(["-sSL", "--max-time", "10", s.app_url + "/to-self"])
        assert p.returncode == 0, p.stderr
        landing = [h for h in s.origin.received()[n:] if h.startswith("GET /landing ")]
        assert landing and "cf-access-jwt-assertion:" in landing[0].lower(), landing
        assert not s.leaks() and not tls.leaks(s.token)
        # --location-trusted would hand it to every host: refused
        p = s.run(["--location-trusted", s.app_url + "/to-host"])
        assert p.returncode == 64 and "location-trusted" in p.stderr, p.stderr
    finally:
        tls.close()


def test_curl_config_files_are_not_read(setup, tmp_path):
    """latch gives curl -q first, so no .curlrc is read (HOME, XDG_CONFIG_HOME, CURL_HOME):
    neither `location`, `url`, `proxy` nor `header` there changes where the token goes; -K files
    are refused, since latch cannot see what they make curl do."""
    s = setup
    rc = (f'location\nurl = "{s.other_url}/from-curlrc"\nproxy = "{s.same_url}"\n'
          f'header = "X-From-Curlrc: 1"\n')
    curl_home = tmp_path / "curlhome"
    curl_home.mkdir()
    s.c.xdg.mkdir(parents=True, exist_ok=True)
    for f in (s.c.home / ".curlrc", s.c.xdg / ".curlrc", s.c.xdg / "curlrc", curl_home / ".curlrc"):
        f.write_text(rc)
    # plain curl reads them (the files would matter):
    plain = subprocess.run(["curl", "-sS", "--max-time", "5", f"{s.app_url}/plain"], capture_output=True,
                           text=True, env=s.c.env(None, CURL_HOME=str(curl_home)), timeout=20)
    assert any("X-From-Curlrc" in h for h in s.same.received()), (plain.stderr, s.same.received())
    n_same, n_other = len(s.same.received()), len(s.other.received())
    p = s.run(["-sS", "--max-time", "5", f"{s.app_url}/to-host"], env={"CURL_HOME": str(curl_home)})
    assert p.returncode == 0 and p.stdout == "", (p.stdout, p.stderr)  # the 302 itself: not followed
    assert len(s.same.received()) == n_same and len(s.other.received()) == n_other
    assert not s.leaks()
    (tmp_path / "c.cfg").write_text(f'location\nurl = "{s.other_url}/from-config"\n')
    for args in (["-K", str(tmp_path / "c.cfg")], ["--config", str(tmp_path / "c.cfg")], ["-sK", str(tmp_path / "c.cfg")]):
        p = s.run([*args, f"{s.app_url}/to-host"])
        assert p.returncode == 64 and "config file" in p.stderr, (args, p.stderr)
    assert not s.leaks()


def test_proxies_never_see_a_plain_http_token(setup):
    """A proxy reads every header of a plain-http request: proxy options are refused for http,
    and the proxy environment is dropped for curl (plain http goes to this machine only)."""
    s = setup
    proxy = s.same_url
    for args in (["-x", proxy], ["--proxy", proxy], [f"-x{proxy}"], ["--preproxy", proxy],
                 ["--socks5", "127.0.0.1:1"], ["--socks5-hostname", "127.0.0.1:1"], ["--proxy1.0", proxy]):
        p = s.run([*args, "--max-time", "5", f"{s.app_url}/p"])
        assert p.returncode == 64 and "proxy" in p.stderr, (args, p.returncode, p.stderr)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        p = s.run(["-sS", "--max-time", "5", f"{s.app_url}/env"], env={var: proxy})
        assert p.returncode == 0 and "recorded" in p.stdout, (var, p.stderr)
    # latch's own requests with the token (login's check, logout) ignore the environment too
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        p = subprocess.run([LATCH, "login", f"{s.app_url}/"], capture_output=True, text=True,
                           env=s.c.env("forbidden", **{var: proxy}), timeout=30)
        assert p.returncode == 0 and f"as {EMAIL}" in p.stderr, (var, p.stderr)
    p = subprocess.run([LATCH, "logout", f"{s.app_url}/"], capture_output=True, text=True,
                       env=s.c.env("forbidden", http_proxy=proxy, ALL_PROXY=proxy), timeout=30)
    assert p.returncode == 0, p.stderr
    assert s.same.received() == [] and not s.leaks()


@pytest.mark.timeout(120)
def test_https_proxy_tunnels_and_sees_no_token(latchd, cli_factory, tmp_path):
    """curl 7.88 sends the user's headers only inside the tunnel to the origin, never in the
    CONNECT to the proxy (checked here with a real CONNECT proxy): proxies are allowed with
    https, by option and by environment."""
    d, host, crt = tls_gateway(latchd, tmp_path)
    c = cli_factory(d)
    tok = ak.issue(d, "api", EMAIL)
    c.put_token(host, "api", ak.aud_of(d, host), tok, scheme="https")
    proxy = ConnectProxy()
    try:
        url = f"https://{host}/through"
        for how in (["-x", f"http://127.0.0.1:{proxy.port}"], []):
            env = c.env("forbidden", **({} if how else {"https_proxy": f"http://127.0.0.1:{proxy.port}"}))
            n = len(proxy.connects)
            p = subprocess.run([LATCH, "curl", "-sS", "--max-time", "10", "--cacert", str(crt), *how, url],
                               capture_output=True, text=True, env=env, timeout=30)
            assert p.returncode == 0, (how, p.returncode, p.stderr)
            e = json.loads(p.stdout)
            assert e["path"] == "/through" and e["headers"]["cf-access-authenticated-user-email"] == EMAIL, e
            assert len(proxy.connects) == n + 1, proxy.connects
            head = proxy.connects[-1]
            assert head.startswith(f"CONNECT {host} "), head
            assert not carrying(head, tok), head
        # -k would send the token to whoever answers for the name: refused
        p = subprocess.run([LATCH, "curl", "-k", url], capture_output=True, text=True,
                           env=c.env("forbidden"), timeout=30)
        assert p.returncode == 64 and "--insecure" in p.stderr, p.stderr
    finally:
        proxy.close()


@pytest.mark.timeout(120)
def test_redirects_over_https_carry_the_token_cookie_with_its_pair(latchd, cli_factory, tmp_path):
    """-L on https: the gateway takes the token cookie only beside its pair (__Host-latch_pair,
    a keyed tag only the gateway computes, which it gives the holder of a valid token), so
    latch sends both; the echo origin admitted behind it is the proof."""
    d, host, crt = tls_gateway(latchd, tmp_path)
    c = cli_factory(d)
    tok = ak.issue(d, "api", EMAIL)
    c.put_token(host, "api", ak.aud_of(d, host), tok, scheme="https")
    env = {"LATCH_CA_BUNDLE": str(crt)}
    p = c.run("curl", "-sSL", "--cacert", str(crt), f"https://{host}/followed", browser="forbidden", env=env)
    assert p.returncode == 0, (p.returncode, p.stderr)
    e = json.loads(p.stdout)
    assert e["path"] == "/followed" and e["headers"]["cf-access-authenticated-user-email"] == EMAIL, e
    # the pair is the gateway's to give: a made-up one is refused
    r = subprocess.run(["curl", "-s", "--cacert", str(crt), "-o", "/dev/null", "-w", "%{http_code}",
                        "-H", f"Cookie: CF_Authorization={tok}; __Host-latch_pair={'0' * 32}",
                        f"https://{host}/x"], capture_output=True, text=True, timeout=30)
    assert r.stdout == "401", r.stdout


def test_cleartext_only_to_this_machine(setup):
    """Plain http carries a token to loopback names and addresses only: a name that merely starts
    with 127. is not one (curl, login, token); nor is an auth URL named by discovery."""
    s = setup
    for cmd in (["curl", "-sS"], ["login"], ["token"]):
        for url in ("http://127.attacker.example:1/", "http://127.0.0.1.example:1/", "http://localhost.example:1/",
                    "http://10.0.0.1:1/", "http://127.1:1/"):
            p = subprocess.run([LATCH, "--timeout", "3", *cmd, url], capture_output=True, text=True,
                               env=s.c.env("forbidden"), timeout=30)
            assert p.returncode == 64, (cmd, url, p.returncode, p.stderr)
    # an app host whose discovery names a plain-http auth URL on another machine: refused
    fake = FakeApp(free_port(), {"auth_url": "http://127.attacker.example:9", "auth_domain": "127.attacker.example:9",
                               "aud": "0" * 64, "app": "x"})
    try:
        p = subprocess.run([LATCH, "--timeout", "3", "login", f"http://127.0.0.1:{fake.port}/"],
                           capture_output=True, text=True, env=s.c.env("forbidden"), timeout=30)
        assert p.returncode == 1 and "refused" in p.stderr, (p.returncode, p.stderr)
        assert s.c.forbidden_browser_calls() == []
    finally:
        fake.close()


# --------------------------------------------------------------------------------------------
# peers: a TLS recorder, a CONNECT proxy, an app host that answers discovery with a lie

class TlsRecorder(Recorder):
    def __init__(self, crt, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(crt), str(key))
        super().__init__()

    def _serve(self, c):
        try:
            c = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()
            return
        super()._serve(c)

    def leaks(self, token):
        return [h for h in self.received() if carrying(h, token)]


class ConnectProxy(Recorder):
    """A real CONNECT proxy on loopback: records each CONNECT head, then tunnels bytes."""

    def __init__(self):
        self.connects = []
        super().__init__()

    def _serve(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                c.close()
                return
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        self.connects.append(text)
        target = text.split(" ")[1]
        h, _, p = target.rpartition(":")
        up = socket.create_connection(("127.0.0.1", int(p)), timeout=10)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            up.sendall(rest)

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            finally:
                for x in (a, b):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(up, c), daemon=True).start()
        pump(c, up)


class FakeApp:
    """Answers GET /cdn-cgi/access/app with the given JSON."""

    def __init__(self, port, answer):
        body = json.dumps(answer).encode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = port

        def serve():
            while True:
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    return
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                c.close()
        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.sock.close()
