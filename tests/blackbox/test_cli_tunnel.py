"""`latch tcp` and `latch ssh` (the command line's tunnels): a TCP stream carried in a WebSocket to a
tcp app of latchd (`origin: tcp://HOST:PORT`), with the real peers at both ends: `redis-server`
behind the gateway and the real `redis-cli` on latch's --url listener (two at once); a real sshd
(sshkit.py) reached by the real `ssh` and `scp` through `ProxyCommand latch ssh --hostname …`.
Also: a service token from the environment (no browser, on every connection), a person outside
the policy refused with the words saying so, an HTTP app refused as "not a TCP application", a
gateway stopped then started while latch retries, a latchd SIGHUP under an open ssh session, a
tunnel dropped mid-stream said so, and a hostile "gateway" (a fake server) whose broken
handshakes and frames latch refuses."""

import base64
import contextlib
import hashlib
import os
import shlex
import signal
import socket
import subprocess
import threading
import time

import pytest

import authkit as ak
from clikit import (EMAIL, LATCH, cli_factory, gateway_config,  # noqa: F401 (fixture)
                    needs_browser, self_signed)
from harness import free_port, get, stop_pid, wait_port
from rediskit import REDIS_SERVER, Resp
from sshkit import SSH, keygen, run_ssh, sshd_factory  # noqa: F401 (fixture)

REDIS_CLI = os.environ.get("REDIS_CLI", "/usr/bin/redis-cli")
SCP = os.environ.get("SCP", "/usr/bin/scp")

pytestmark = pytest.mark.timeout(240)


def tcp_app(name, host, port, target, include=None, policies=None):
    return {"name": name, "domains": [f"{host}:{port}"], "origin": f"tcp://127.0.0.1:{target}",
            "policies": policies or [{"name": f"{name}-staff", "decision": "allow",
                                      "include": include or [{"email_domain": "example.com"}]}]}


def start_redis(tmp_path):
    port = free_port()
    p = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 15, p)
    return p, port


@pytest.fixture
def redis(tmp_path):
    p, port = start_redis(tmp_path)
    yield port
    stop_pid(p)


def gateway(latchd, apps_of_port, **extra):
    port = free_port()
    cfg = gateway_config(port, apps_of_port(port), **extra)
    return latchd(cfg, port=port)


def wait_listening(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"latch exited {proc.returncode}: {proc.stderr.read()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "latch's listener never came up"
            time.sleep(0.05)


@contextlib.contextmanager
def running(p):
    """A latch (or ssh) process killed, by its pid, if still running when the block ends."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def redis_cli(lport, *args, timeout=30):
    return subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(lport), *args], capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# redis through latch tcp --url

def test_redis_cli_through_the_listener_two_at_once(latchd, cli_factory, redis, tmp_path):
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    lport = free_port()
    p = c.popen("tcp", "--hostname", f"http://redis.localhost:{d.port}", "--url", f"127.0.0.1:{lport}",
                browser="forbidden")
    with running(p):
        wait_listening(lport, p)
        # one connection held open across the others: each is its own tunnel, at once
        held = Resp(lport, timeout=20)
        assert held.cmd("SET", "held", "1") == "OK"
        results = {}

        def one(i):
            r = redis_cli(lport, "SET", f"k{i}", f"v{i}")
            g = redis_cli(lport, "GET", f"k{i}")
            results[i] = (r.returncode, r.stdout.strip(), g.stdout.strip(), r.stderr + g.stderr)

        ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        for i in range(2):
            assert results[i][:3] == (0, "OK", f"v{i}"), results[i]
        assert held.cmd("GET", "held") == b"1"
        # what redis itself holds: the writes went through, to the origin the app names
        with Resp(redis) as direct:
            assert direct.cmd("GET", "k0") == b"v0" and direct.cmd("GET", "k1") == b"v1"
        # a bulk value both ways (many frames)
        big = os.urandom(3 * 1024 * 1024).hex()[:3 * 1024 * 1024]
        assert held.cmd("SET", "big", big) == "OK"
        assert held.cmd("GET", "big") == big.encode()
        held.close()
        assert c.forbidden_browser_calls() == []


def test_the_listener_outlives_a_dropped_tunnel(latchd, cli_factory, redis):
    """--url: a tunnel that drops closes its own connection; the listener keeps serving, and a
    new connection, while the gateway is still down, waits for it to come back (retried)."""
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    lport = free_port()
    p = c.popen("--timeout", "120", "tcp", "--hostname", f"http://redis.localhost:{d.port}", "--url",
                f"127.0.0.1:{lport}", browser="forbidden")
    with running(p):
        wait_listening(lport, p)
        held = Resp(lport, timeout=30)
        assert held.cmd("PING") == "PONG"
        d.stopped_by_test = True
        d.signal(signal.SIGKILL)
        d.proc.wait(60)
        with pytest.raises((EOFError, ConnectionError)):
            held.cmd("PING")  # that connection is closed, not left hanging
        held.close()
        assert p.poll() is None, "the listener must keep serving"
        later = Resp(lport, timeout=60)
        later.send("PING")  # latch is retrying this one while the gateway is down
        d.start()
        assert later.reply() == "PONG"
        later.close()
    err = p.stderr.read()
    assert "dropped mid-stream" in err and "retrying" in err, err


def test_listener_is_loopback_only_and_flags(cli_factory, latchd):
    d = gateway(latchd, lambda port: [])  # latch refuses these before it reaches any gateway
    c = cli_factory(d)
    for spec in ("0.0.0.0:4000", "192.168.1.2:4000", "example.com:4000", "[::]:4000"):
        r = c.run("tcp", "--hostname", f"http://redis.localhost:{d.port}", "--url", spec, browser="forbidden")
        assert r.returncode == 64 and "loopback address only" in r.stderr, (spec, r.stderr)
    for spec in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x"):
        r = c.run("tcp", "--hostname", f"http://redis.localhost:{d.port}", "--url", spec, browser="forbidden")
        assert r.returncode == 64 and "--url takes 127.0.0.1:PORT" in r.stderr, (spec, r.stderr)
    r = c.run("tcp", browser="forbidden")
    assert r.returncode == 64 and "--hostname HOST" in r.stderr, r.stderr
    r = c.run("ssh", "--hostname", "a", "--hostname", "b", browser="forbidden")
    assert r.returncode == 64 and "given twice" in r.stderr, r.stderr
    # plain http to another machine: the token would travel in clear
    r = c.run("tcp", "--hostname", "http://db.example.com", browser="forbidden")
    assert r.returncode == 64 and "travel in clear" in r.stderr, r.stderr
    for verb in ("tcp", "ssh"):
        r = c.run(verb, "--help", browser="forbidden")
        assert r.returncode == 0 and f"{verb} --hostname HOST" in r.stdout, r.stdout
    r = c.run("--help", browser="forbidden")
    assert "latch tcp --hostname" in r.stdout and "latch ssh --hostname" in r.stdout, r.stdout


# --------------------------------------------------------------------------------------------
# ssh and scp through latch ssh

def ssh_setup(tmp_path, sshd_factory):
    key = keygen(tmp_path / "id_ed25519")
    s = sshd_factory(authorized_keys=(tmp_path / "id_ed25519.pub").read_text())
    return key, s


def proxy(d, host="ssh.localhost", extra=""):
    return f"{shlex.quote(LATCH)} {extra}ssh --hostname http://{host}:{d.port}"


def ssh_gateway(latchd, s, **kw):
    return gateway(latchd, lambda port: [tcp_app("ssh", "ssh.localhost", port, s.port, **kw)])


def scp_args(s, key, kh_dir, proxy_command):
    kh = kh_dir / "scp_known_hosts"
    kh.write_text(s.known_hosts_line().replace(f"[127.0.0.1]:{s.port}", "ssh.example"))
    return [SCP, "-q", "-F", "none", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={kh}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(key), "-o", f"ProxyCommand={proxy_command}"]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ssh_and_scp_through_latch_ssh(latchd, cli_factory, sshd_factory, tmp_path):
    key, s = ssh_setup(tmp_path, sshd_factory)
    d = ssh_gateway(latchd, s)
    c = cli_factory(d)
    c.put_token(f"ssh.localhost:{d.port}", "ssh", None, ak.issue(d, "ssh", EMAIL))
    env = c.env("forbidden")
    r = run_ssh(s, command="true", identity=key, proxy_command=proxy(d), host="ssh.example", port=22, env=env)
    assert r.returncode == 0, r.stderr
    r = run_ssh(s, command="echo remote-$((6*7)); id -un", identity=key, proxy_command=proxy(d),
                host="ssh.example", port=22, env=env)
    assert r.returncode == 0 and r.stdout.split() == ["remote-42", "root"], (r.stdout, r.stderr)
    # a few MiB each way, checksums compared
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(6 * 1024 * 1024 + 123))
    dest = tmp_path / "remote-copy.bin"
    back = tmp_path / "back.bin"
    args = scp_args(s, key, tmp_path, proxy(d))
    up = subprocess.run([*args, str(src), f"root@ssh.example:{dest}"], capture_output=True, text=True,
                        env=env, timeout=120)
    assert up.returncode == 0, up.stderr
    assert sha256(dest) == sha256(src)
    down = subprocess.run([*args, f"root@ssh.example:{dest}", str(back)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert sha256(back) == sha256(src)
    assert c.forbidden_browser_calls() == []


def test_service_token_never_a_browser(latchd, cli_factory, sshd_factory, tmp_path):
    key, s = ssh_setup(tmp_path, sshd_factory)
    cid, secret, stanza = ak.make_service_token(tmp_path, "deploy")
    port = free_port()
    cfg = gateway_config(port, [tcp_app("ssh", "ssh.localhost", port, s.port, policies=[
        {"name": "deploy", "decision": "service_auth", "include": [{"service_token": "deploy"}]}])])
    cfg["service_tokens"] = [stanza]
    d = latchd(cfg, port=port)
    c = cli_factory(d)
    env = c.env("forbidden", LATCH_CLIENT_ID=cid, LATCH_CLIENT_SECRET=secret)
    for i in range(3):  # every connection carries the headers; none asks for a browser
        r = run_ssh(s, command=f"echo run-{i}", identity=key, proxy_command=proxy(d), host="ssh.example",
                    port=22, env=env)
        assert r.returncode == 0 and r.stdout.strip() == f"run-{i}", r.stderr
    assert c.forbidden_browser_calls() == [] and not c.store.exists() or not list(c.store.glob("*.json"))
    # a wrong secret is refused, with the words to act on, and still no browser
    p = subprocess.run([LATCH, "ssh", "--hostname", f"http://ssh.localhost:{d.port}"], input="", text=True,
                       capture_output=True, timeout=60,
                       env=c.env("forbidden", LATCH_CLIENT_ID=cid, LATCH_CLIENT_SECRET="0" * 64))
    assert p.returncode == 4 and "refused by policy" in p.stderr and "LATCH_CLIENT_SECRET" in p.stderr, p.stderr
    assert c.forbidden_browser_calls() == []


def test_person_outside_the_policy_is_refused(latchd, cli_factory, sshd_factory, tmp_path):
    key, s = ssh_setup(tmp_path, sshd_factory)
    d = ssh_gateway(latchd, s, include=[{"email": "alice@example.com"}])
    c = cli_factory(d)
    c.put_token(f"ssh.localhost:{d.port}", "ssh", None, ak.issue(d, "ssh", EMAIL))
    p = subprocess.run([LATCH, "ssh", "--hostname", f"http://ssh.localhost:{d.port}"], input="", text=True,
                       capture_output=True, timeout=60, env=c.env("forbidden"))
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "refused by policy" in p.stderr and EMAIL in p.stderr and "the app ssh" in p.stderr, p.stderr
    r = run_ssh(s, command="true", identity=key, proxy_command=proxy(d), host="ssh.example", port=22,
                env=c.env("forbidden"))
    assert r.returncode != 0 and "refused by policy" in r.stderr, r.stderr
    # sshd never saw a connection
    assert "Accepted publickey" not in s.log()


def test_an_http_app_is_not_a_tcp_application(latchd, cli_factory):
    d = gateway(latchd, lambda port: [
        {"name": "web", "domains": [f"web.localhost:{port}"], "origin": "echo",
         "policies": [{"name": "staff", "decision": "allow", "include": [{"email_domain": "example.com"}]}]}])
    c = cli_factory(d)
    c.put_token(f"web.localhost:{d.port}", "web", None, ak.issue(d, "web", EMAIL))
    p = subprocess.run([LATCH, "tcp", "--hostname", f"http://web.localhost:{d.port}"], input="x", text=True,
                       capture_output=True, timeout=60, env=c.env("forbidden"))
    assert p.returncode == 6 and "not a TCP application" in p.stderr, (p.returncode, p.stderr)


# --------------------------------------------------------------------------------------------
# what survives: a gateway that comes back, a reload; what does not: a dropped stream

def test_gateway_stopped_then_started_during_the_retry_window(latchd, cli_factory, redis):
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    d.stop()
    p = subprocess.Popen([LATCH, "--timeout", "120", "tcp", "--hostname", f"http://redis.localhost:{d.port}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=c.env("forbidden"))
    with running(p):
        # latch is retrying (it says so) before the gateway is back
        line = p.stderr.readline().decode()
        assert "retrying" in line, line
        d.start()
        p.stdin.write(Resp.encode("PING"))
        p.stdin.flush()
        assert p.stdout.read(7) == b"+PONG\r\n"
        p.stdin.close()
        assert p.wait(60) == 0, p.stderr.read()


def test_retry_is_bounded(cli_factory, latchd, redis):
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    d.stop()
    p = c.run("--timeout", "2", "tcp", "--hostname", f"http://redis.localhost:{d.port}", browser="forbidden",
              input="")
    assert p.returncode == 1 and "retrying for up to 2 s" in p.stderr and "gave up" in p.stderr, p.stderr


def test_ssh_session_survives_a_reload(latchd, cli_factory, sshd_factory, tmp_path):
    key, s = ssh_setup(tmp_path, sshd_factory)
    d = ssh_gateway(latchd, s)
    c = cli_factory(d)
    c.put_token(f"ssh.localhost:{d.port}", "ssh", None, ak.issue(d, "ssh", EMAIL))
    kh = tmp_path / "kh"
    kh.write_text(s.known_hosts_line().replace(f"[127.0.0.1]:{s.port}", "ssh.example"))
    p = subprocess.Popen([SSH, "-F", "none", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={kh}",
                          "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-i", str(key),
                          "-o", f"ProxyCommand={proxy(d)}", "-l", "root", "ssh.example", "--",
                          "echo ready; while read x; do echo got-$x; done"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=c.env("forbidden"))
    with running(p):
        assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.poll() is not None else ""
        p.stdin.write("one\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "got-one"
        before = d.stderr().count("reloaded")
        d.signal(signal.SIGHUP)  # a reload (the same configuration)
        deadline = time.monotonic() + 30
        while d.stderr().count("reloaded") == before:
            assert time.monotonic() < deadline, d.stderr()
            time.sleep(0.05)
        for word in ("two", "three"):
            p.stdin.write(word + "\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == f"got-{word}"
        assert d.alive()
        p.stdin.close()
        assert p.wait(60) == 0, p.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_dropped_tunnel_is_said_so(latchd, cli_factory, redis, sig):
    """SIGKILL: the node is gone (no close); SIGTERM: the node stops and closes its tunnels (1001)."""
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    p = subprocess.Popen([LATCH, "tcp", "--hostname", f"http://redis.localhost:{d.port}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=c.env("forbidden"))
    with running(p):
        p.stdin.write(Resp.encode("PING"))
        p.stdin.flush()
        assert p.stdout.read(7) == b"+PONG\r\n"
        d.stopped_by_test = True
        d.signal(sig)  # the node carrying the tunnel is gone, or stops
        rc = p.wait(60)
        err = p.stderr.read().decode()
        assert rc == 7 and "cannot be resumed" in err, (rc, err)
        assert ("shutting down" if sig == signal.SIGTERM else "dropped mid-stream") in err, err
        d.proc.wait(60)


# --------------------------------------------------------------------------------------------
# revocation, a refused stored token, TLS

def redis_stdio(c, d, *pre, browser="forbidden"):
    """latch tcp with stdin/stdout the tunnel to the redis app; returns the Popen."""
    return subprocess.Popen([LATCH, *pre, "tcp", "--hostname", f"http://redis.localhost:{d.port}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=c.env(browser))


def ping(p):
    p.stdin.write(Resp.encode("PING"))
    p.stdin.flush()
    return p.stdout.read(7)


def test_revocation_ends_the_tunnel_with_the_reason(latchd, cli_factory, redis):
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, ak.issue(d, "redis", EMAIL))
    p = redis_stdio(c, d)
    with running(p):
        assert ping(p) == b"+PONG\r\n"
        time.sleep(1.1)  # a revocation covers tokens issued before it, to the second
        ak.cli(d, "revoke", "--email", EMAIL, check=True)
        rc = p.wait(60)
        err = p.stderr.read().decode()
        assert rc == 4 and "no longer admits you" in err, (rc, err)


@needs_browser
def test_a_refused_stored_token_is_forgotten_and_a_login_done_once(latchd, cli_factory, redis):
    d = gateway(latchd, lambda port: [tcp_app("redis", "redis.localhost", port, redis)])
    c = cli_factory(d)
    old = ak.issue(d, "redis", EMAIL)
    c.put_token(f"redis.localhost:{d.port}", "redis", None, old)
    time.sleep(1.1)
    ak.cli(d, "revoke", "--email", EMAIL, check=True)
    p = redis_stdio(c, d, "--timeout", "60", browser="good")
    with running(p):
        assert ping(p) == b"+PONG\r\n"
        p.stdin.close()
        assert p.wait(60) == 0
        err = p.stderr.read().decode()
        assert "refused the stored token" in err and "logging in again" in err, err
    assert len(c.browser_calls()) == 1 and c.records(1)[-1]["ok"]
    new = c.stored(f"redis.localhost:{d.port}")["app_token"]
    assert new and new != old


def settled_log(d):
    """How many request-log lines there are once a marker request's own line is written (lines
    are written as requests end, by any worker: the marker's shows those before it are in)."""
    marker = f"/marker-{time.monotonic_ns()}"
    get(d.port, marker, host=f"nothing.localhost:{d.port}")
    d.wait_log(lambda e: e.get("path") == marker, timeout=30)
    return len(d.log_lines())


def tls_tcp_gateway(latchd, tmp_path, target, names=("redis.localhost",)):
    key, crt = self_signed(tmp_path, *names)
    port, tport = free_port(), free_port()
    cfg = gateway_config(port, [tcp_app("redis", "redis.localhost", tport, target)])
    cfg["listen"] = [{"address": f"127.0.0.1:{port}"},
                     {"address": f"127.0.0.1:{tport}", "tls": {"cert": str(crt), "key": str(key)}}]
    return latchd(cfg, port=port, extra_ports=[tport]), tport, crt


def test_tls_verified_as_latch_requests_are(latchd, cli_factory, redis, tmp_path):
    d, tport, crt = tls_tcp_gateway(latchd, tmp_path, redis)
    c = cli_factory(d)
    host = f"redis.localhost:{tport}"
    c.put_token(host, "redis", None, ak.issue(d, "redis", EMAIL), scheme="https")

    # a bare host name is https; the private CA given as for latch's own requests
    p = subprocess.Popen([LATCH, "tcp", "--hostname", host], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=c.env("forbidden", LATCH_CA_BUNDLE=crt))
    with running(p):
        assert ping(p) == b"+PONG\r\n", p.stderr.read() if p.poll() is not None else ""
        p.stdin.close()
        assert p.wait(60) == 0
    # without it, the certificate is not trusted: no token goes out
    seen = settled_log(d)
    p = subprocess.run([LATCH, "--timeout", "2", "tcp", "--hostname", host], input=b"", capture_output=True,
                       timeout=60, env=c.env("forbidden"))
    assert p.returncode == 1 and b"not trusted" in p.stderr, p.stderr
    assert settled_log(d) == seen + 1  # the marker's line alone
    # a certificate for another name is refused even with its CA trusted
    other = tmp_path / "other"
    other.mkdir()
    d2, tport2, crt2 = tls_tcp_gateway(latchd, other, redis, names=("elsewhere.localhost",))
    host2 = f"redis.localhost:{tport2}"
    c2 = cli_factory(d2)
    c2.put_token(host2, "redis", None, ak.issue(d2, "redis", EMAIL), scheme="https")
    seen = settled_log(d2)
    p = subprocess.run([LATCH, "tcp", "--hostname", host2], input=b"", capture_output=True, timeout=60,
                       env=c2.env("forbidden", LATCH_CA_BUNDLE=crt2))
    assert p.returncode == 1 and b"not trusted" in p.stderr and b"mismatch" in p.stderr, p.stderr
    assert settled_log(d2) == seen + 1


# --------------------------------------------------------------------------------------------
# a hostile "gateway": latch checks the handshake and the frames

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeGateway:
    """Answers one upgrade per connection as `script(sock, key)` says."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            head = buf.split(b"\r\n\r\n")[0].decode(errors="replace")
            self.heads.append(head)
            key = ""
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.lower() == "sec-websocket-key":
                    key = v.strip()
            try:
                self.script(c, key)
            except OSError:
                pass
            time.sleep(0.5)
            c.close()

    def close(self):
        self.sock.close()


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def switch(c, key, accept=None):
    c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Accept: {accept or accept_of(key)}\r\n\r\n").encode())


def run_against(fake, cid="id", secret="s"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCH_")}
    env.update(LATCH_CLIENT_ID=cid, LATCH_CLIENT_SECRET=secret, BROWSER="/bin/false")
    return subprocess.run([LATCH, "--timeout", "3", "tcp", "--hostname", f"http://fake.localhost:{fake.port}"],
                          input=b"hello", capture_output=True, timeout=60, env=env)


@pytest.mark.parametrize("case", ["wrong_accept", "masked_frame", "bad_opcode", "reserved_bits",
                                  "fragmented_ping", "bad_close_code", "no_upgrade_header", "continuation_first"])
def test_a_hostile_gateway_is_refused(case):
    def script(c, key):
        if case == "wrong_accept":
            switch(c, key, accept=accept_of("x" * 24))
            return
        if case == "no_upgrade_header":
            c.sendall(f"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept_of(key)}\r\n\r\n".encode())
            return
        switch(c, key)
        frames = {"masked_frame": b"\x82\x83abcd\x00\x00\x00",
                  "bad_opcode": b"\x83\x01x",
                  "reserved_bits": b"\xc2\x01x",
                  "fragmented_ping": b"\x09\x01x",
                  "bad_close_code": b"\x88\x02\x03\xed",  # 1005 may not be sent
                  "continuation_first": b"\x80\x01x"}
        c.sendall(frames[case])
        time.sleep(1)

    fake = FakeGateway(script)
    try:
        p = run_against(fake)
    finally:
        fake.close()
    err = p.stderr.decode()
    assert p.returncode not in (0,) and p.stdout == b"", (case, p.returncode, err)
    if case in ("wrong_accept", "no_upgrade_header"):
        assert p.returncode == 1 and ("Sec-WebSocket-Accept" in err or "without switching" in err), err
    else:
        assert p.returncode == 7 and ("framing" in err or "malformed close" in err), err


def read_frame(c):
    """One client frame: (opcode, unmasked payload); a client frame must be masked."""
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            assert chunk, "latch closed the connection"
            b += chunk
        return b
    b0, b1 = exact(2)
    assert b1 & 0x80, "an unmasked client frame"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(exact(2), "big")
    elif n == 127:
        n = int.from_bytes(exact(8), "big")
    mask = exact(4)
    return b0 & 0x0F, bytes(x ^ mask[i % 4] for i, x in enumerate(exact(n)))


def test_the_upgrade_carries_the_service_token_and_no_more():
    got = []

    def script(c, key):
        switch(c, key)
        c.sendall(b"\x89\x03abc")  # a ping: latch answers it with the same payload
        while not ({0x2, 0xA} <= {op for op, _ in got}) and len(got) < 4:
            got.append(read_frame(c))
        c.sendall(b"\x82\x02ok\x88\x02\x03\xe8")  # data, then a normal close
        time.sleep(1)

    fake = FakeGateway(script)
    try:
        p = run_against(fake, cid="the-id", secret="the-secret")
        bad = run_against(fake, cid="id\r\nX-Injected: 1", secret="s")
    finally:
        fake.close()
    assert p.returncode == 0 and p.stdout == b"ok", (p.returncode, p.stderr)
    assert (0xA, b"abc") in got and (0x2, b"hello") in got, got
    head = fake.heads[0]
    assert head.startswith("GET / HTTP/1.1\r\n"), head
    assert "\r\nCF-Access-Client-Id: the-id\r\n" in head and "\r\nCF-Access-Client-Secret: the-secret" in head
    assert "cf-access-token" not in head.lower() and "Sec-WebSocket-Version: 13" in head
    assert bad.returncode == 64 and b"control character" in bad.stderr and len(fake.heads) == 1
