"""latchd as a service: the sd_notify protocol on a real AF_UNIX datagram socket (READY=1 only
once the port answers, RELOADING=1 with MONOTONIC_USEC then READY=1 around every reload,
STOPPING=1 when the drain starts), the systemd unit (systemd-analyze verify), the man page
(groff and man without warnings), the example configurations (latchd check, haproxy -c,
nginx -t) and `make install DESTDIR=…`."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import authkit as ak
from harness import (LATCHD, ROOT, Latchd, block_app, bypass_app, free_port, get, materialize,
                     stop_pid)
from test_tls import make_cert

UNIT = ROOT / "dist" / "systemd" / "latchd.service"
MAN8 = ROOT / "man" / "latchd.8"
EXAMPLES = ROOT / "examples"


def cfg(flip_open=False):
    flip = (bypass_app if flip_open else block_app)("flip", ["flip.localhost"])
    return {"apps": [bypass_app("pub", ["pub.localhost"]), flip]}


# --------------------------------------------------------------------------------------------
# sd_notify


class Notify:
    """A service manager's end of NOTIFY_SOCKET: a datagram socket bound to a path or, with
    abstract=True, to "@name" in the abstract namespace."""

    def __init__(self, tmp, abstract=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"latch-test-notify-{os.getpid()}-{free_port()}"
            self.s.bind("\0" + name)
            self.env = "@" + name
        else:
            path = str(Path(tmp) / "notify.sock")
            self.s.bind(path)
            self.env = path
        self.messages = []

    def recv(self, timeout=10.0):
        """The next datagram as a dict of its assignments (None after `timeout`)."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(4096)
        except socket.timeout:
            return None
        msg = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.messages.append(msg)
        return msg

    def expect(self, key, timeout=10.0):
        """Reads datagrams until one carries `key`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(max(0.05, deadline - time.monotonic()))
            if m is not None and key in m:
                return m
        raise AssertionError(f"no {key} within {timeout}s; got {self.messages}")

    def close(self):
        self.s.close()


def start(d, notify):
    env = dict(os.environ)
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.env
    else:
        env.pop("NOTIFY_SOCKET", None)
    d.out = open(d.stdout_path, "ab")
    d.err = open(d.stderr_path, "ab")
    d.proc = subprocess.Popen([LATCHD, "--config", str(d.config_path)], stdout=d.out,
                              stderr=d.err, stdin=subprocess.DEVNULL, env=env)
    return d


def mono_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_lifecycle(tmp_path, abstract):
    n = Notify(tmp_path, abstract)
    d = Latchd(tmp_path / "d", cfg(False))
    start(d, n)
    try:
        ready = n.expect("READY", 20)
        # READY=1 means serving: the port answers at once, without a retry
        with socket.create_connection(("127.0.0.1", d.port), timeout=2):
            pass
        assert ready["READY"] == "1" and ready["MAINPID"] == str(d.pid)
        assert "STATUS" in ready and f"127.0.0.1:{d.port}" in ready["STATUS"]
        assert get(d.port, "/", host="flip.localhost").status == 403

        # SIGHUP with a good file: RELOADING=1 + MONOTONIC_USEC (now), then READY=1
        d.write_config(cfg(True))
        before = mono_usec()
        d.signal(signal.SIGHUP)
        m = n.expect("RELOADING", 10)
        assert m["RELOADING"] == "1"
        assert before <= int(m["MONOTONIC_USEC"]) <= mono_usec(), (before, m)
        r = n.expect("READY", 10)
        assert r["READY"] == "1" and "reloaded" in r["STATUS"], r
        assert get(d.port, "/", host="flip.localhost").status == 200

        # SIGHUP with a bad file: the same pair, STATUS says it was refused
        good = d.config_path.read_text()
        d.config_path.write_text(good.replace("decision: bypass", "decision: perhaps", 1))
        d.signal(signal.SIGHUP)
        assert n.expect("RELOADING", 10)["RELOADING"] == "1"
        r = n.expect("READY", 10)
        assert "refused" in r["STATUS"] and "reloaded" not in r["STATUS"], r
        assert get(d.port, "/", host="flip.localhost").status == 200
        d.config_path.write_text(good)

        # a reload through the admin socket notifies the same way
        p = ak.cli(d, "reload")
        assert p.returncode == 0, p.stderr
        assert n.expect("RELOADING", 10)["RELOADING"] == "1"
        assert n.expect("READY", 10)["READY"] == "1"

        # SIGTERM: STOPPING=1 when the drain starts, then a clean exit
        d.signal(signal.SIGTERM)
        assert n.expect("STOPPING", 10)["STOPPING"] == "1"
        assert d.proc.wait(20) == 0
    finally:
        stop_pid(d.proc)
        d.close_files()
        n.close()
    assert not [m for m in n.messages if "ERRNO" in m or "WATCHDOG" in m]


def test_no_ready_when_start_fails(tmp_path):
    n = Notify(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    d = Latchd(tmp_path / "d", cfg(), port=port)
    start(d, n)
    try:
        assert d.proc.wait(20) == 1
        assert n.recv(0.5) is None, f"READY sent by a daemon that never served: {n.messages}"
        assert "cannot listen" in d.stderr()
        assert not (d.tmp / "state" / "admin.sock").exists(), "a failed start left its socket"
    finally:
        stop_pid(d.proc)
        d.close_files()
        taken.close()
        n.close()


def test_a_worker_that_cannot_start_fails_the_start(tmp_path):
    """Issue 12: when a worker cannot start (here: no descriptor left for its event loop under a
    low RLIMIT_NOFILE, with many workers), the workers already running drain and latchd exits 1
    (it exited 0: `goto join`, then the status of a clean stop), without READY=1, and removes its
    admin socket."""
    import resource
    n = Notify(tmp_path)
    d = Latchd(tmp_path / "d", dict(cfg(), workers=200))
    env = dict(os.environ, NOTIFY_SOCKET=n.env)
    d.out = open(d.stdout_path, "ab")
    d.err = open(d.stderr_path, "ab")
    d.proc = subprocess.Popen([LATCHD, "--config", str(d.config_path)], stdout=d.out, stderr=d.err,
                              stdin=subprocess.DEVNULL, env=env,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    try:
        assert d.proc.wait(60) == 1, d.stderr()
        assert re.search(r"cannot start worker ([1-9]\d*)", d.stderr()), d.stderr()
        while n.recv(0.5) is not None:  # STOPPING=1: the workers that ran drained
            pass
        assert not [m for m in n.messages if "READY" in m], n.messages
        assert not (d.tmp / "state" / "admin.sock").exists(), "a failed start left its socket"
    finally:
        stop_pid(d.proc)
        d.close_files()
        n.close()


@pytest.mark.parametrize("value", [None, "/nonexistent/notify.sock", "relative", "@"])
def test_runs_without_a_service_manager(tmp_path, value):
    d = Latchd(tmp_path / "d", cfg(True))
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    if value is not None:
        env["NOTIFY_SOCKET"] = value
    d.out = open(d.stdout_path, "ab")
    d.err = open(d.stderr_path, "ab")
    d.proc = subprocess.Popen([LATCHD, "--config", str(d.config_path)], stdout=d.out,
                              stderr=d.err, stdin=subprocess.DEVNULL, env=env)
    try:
        from harness import wait_port
        wait_port(d.port, 15, d.proc)
        assert get(d.port, "/", host="flip.localhost").status == 200
        d.signal(signal.SIGHUP)
        time.sleep(0.3)
        assert d.alive()
        d.signal(signal.SIGTERM)
        assert d.proc.wait(20) == 0
    finally:
        stop_pid(d.proc)
        d.close_files()


# --------------------------------------------------------------------------------------------
# the systemd unit


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_unit_contents():
    s = unit_settings(UNIT.read_text())
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify"
    assert one["ExecStart"] == "/usr/local/bin/latchd --config /etc/latch/latch.yaml"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    stop = re.fullmatch(r"(\d+)s?", one["TimeoutStopSec"])
    assert stop and int(stop.group(1)) > 30, "TimeoutStopSec must exceed the 30 s drain"
    assert one["Restart"] == "on-failure"
    assert one["User"] == "latch" and one["Group"] == "latch"
    assert one["StateDirectory"] == "latch" and one["StateDirectoryMode"] == "0700"
    assert one["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert one["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                 "PrivateTmp": "yes", "LimitNOFILE": "65536"}.items():
        assert one[k] == v, k
    # the unit's state_dir is the one the examples use
    for ex in (EXAMPLES / "single-node.yaml", EXAMPLES / "cluster" / "latch.yaml"):
        assert yaml.safe_load(ex.read_text())["state_dir"] == "/var/lib/latch"


def systemd_verify(path, manpath):
    env = dict(os.environ, MANPATH=str(manpath), SYSTEMD_LOG_COLOR="0")
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path):
    # the unit names /usr/local/bin/latchd and man:latchd(8): point both at this tree
    mandir = tmp_path / "man" / "man8"
    mandir.mkdir(parents=True)
    shutil.copy(MAN8, mandir / "latchd.8")
    unit = tmp_path / "latchd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/latchd", str(Path(LATCHD).resolve())))
    p = systemd_verify(unit, tmp_path / "man")
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr
    # and it does complain about a broken unit: the check above can fail
    bad = tmp_path / "latchd-bad.service"
    bad.write_text(unit.read_text().replace("Type=notify", "Type=notifyy")
                   .replace("ProtectHome=yes", "ProtectHomme=yes"))
    p = systemd_verify(bad, tmp_path / "man")
    out = p.stdout + p.stderr
    assert "notifyy" in out and "ProtectHomme" in out, out


# --------------------------------------------------------------------------------------------
# the man page


def test_man_page_renders_without_warnings():
    p = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN8)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0")
    p = subprocess.run(["man", "-l", str(MAN8)], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    text = re.sub(r".\x08", "", p.stdout)  # overstrike (bold, underline) to plain text
    text = re.sub(r"[ \t]+", " ", text)  # justification spaces
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "CONFIGURATION",
                    "ADMIN SOCKET", "SIGNALS", "FILES", "EXIT STATUS", "EXAMPLES", "SYSTEMD"):
        assert re.search(rf"^{section}\s*$", text, re.M), section
    # every subcommand and option of latchd --help is documented
    usage = subprocess.run([LATCHD, "--help"], capture_output=True, text=True).stdout
    for word in ("status", "reload", "check", "token issue", "keys rotate", "revoke",
                 "service-token create", "policy-test"):
        assert f"latchd {word}" in usage, word
        assert f"latchd {word}" in text, word
    for opt in set(re.findall(r"--[a-z][a-z-]+", usage)):
        assert opt in text, opt
    for word in ("SIGHUP", "SIGTERM", "SIGUSR1", "admin.sock", "latchd.lock", "keys/", "revocations.json",
                 "READY=1", "RELOADING=1", "STOPPING=1", "64"):
        assert word in text, word
    # a broken page does warn: the check above can fail
    broken = subprocess.run(["groff", "-man", "-ww", "-z"], input=".TH X 8\n.SH NAME\n.BOGUS x\n",
                            capture_output=True, text=True, timeout=30)
    assert broken.stderr


# --------------------------------------------------------------------------------------------
# example configurations


def check(path):
    return subprocess.run([LATCHD, "check", "--config", str(path)], capture_output=True, text=True,
                          timeout=30)


def test_single_node_example_checks(tmp_path):
    ex = EXAMPLES / "single-node.yaml"
    # check loads the certificates, keys, CA and secret it names: here, stand-ins under tmp_path
    # (test_config_check.py: the example as it is, with none of them, is refused)
    crt, key, _ = make_cert(tmp_path, "example.com")
    copy = tmp_path / "single-node.yaml"
    copy.write_text(materialize(ex.read_text(), tmp_path, (crt.read_bytes(), key.read_bytes())))
    p = check(copy)
    assert p.returncode == 0 and "ok" in p.stdout and not p.stderr, p.stdout + p.stderr
    c = yaml.safe_load(ex.read_text())
    assert c["store"] == "embedded" and c["state_dir"] == "/var/lib/latch"
    # a broken copy is refused: the check above can fail
    bad = tmp_path / "bad.yaml"
    bad.write_text(ex.read_text().replace("decision: allow", "decision: allw", 1))
    p = check(bad)
    assert p.returncode == 2 and re.search(re.escape(str(bad)) + r":\d+:\d+: ", p.stdout + p.stderr)


def test_demo_example_checks():
    assert check(EXAMPLES / "demo.yaml").returncode == 0


def test_cluster_example(tmp_path):
    ex = EXAMPLES / "cluster" / "latch.yaml"
    c = yaml.safe_load(ex.read_text())
    assert c["store"] == "redis://10.0.0.9:6379/0"
    assert c["store_key_file"] and c["trusted_proxies"] and c["admin"]["listen"]
    # check reads store_key_file and the other files: a copy pointing at real ones, then the
    # example as it is
    crt, key, _ = make_cert(tmp_path, "example.com")
    copy = tmp_path / "latch.yaml"
    copy.write_text(materialize(ex.read_text(), tmp_path, (crt.read_bytes(), key.read_bytes())))
    p = check(copy)
    assert p.returncode == 0, p.stdout + p.stderr
    p = check(ex)
    assert p.returncode == 2 and "'store_key_file': cannot read " + c["store_key_file"] in p.stdout + p.stderr
    # the load balancers' nodes are the cluster's listen port
    port = c["listen"][0]["address"].rsplit(":", 1)[1]
    hap = (EXAMPLES / "cluster" / "haproxy.cfg").read_text()
    ngx = (EXAMPLES / "cluster" / "nginx.conf").read_text()
    hap_nodes = re.findall(r"^\s*server \S+ (10\.\d+\.\d+\.\d+):(\d+)", hap, re.M)
    ngx_nodes = re.findall(r"^\s*server (10\.\d+\.\d+\.\d+):(\d+)", ngx, re.M)
    assert len(hap_nodes) >= 2 and len(ngx_nodes) >= 2
    assert {p_ for _, p_ in hap_nodes} == {port} == {p_ for _, p_ in ngx_nodes}
    # without store_key_file a redis store is refused
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(l for l in ex.read_text().splitlines()
                             if not l.startswith("store_key_file")))
    p = check(bad)
    assert p.returncode == 2 and "store_key_file" in p.stdout + p.stderr


def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", v)
    assert m, v
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@pytest.fixture
def certs(tmp_path):
    """A self-signed certificate for the load balancers' copies: (cert, key, cert+key)."""
    c, k, both = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "both.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(k),
                    "-out", str(c), "-days", "2", "-subj", "/CN=auth.example.com"],
                   check=True, capture_output=True, timeout=60)
    both.write_bytes(c.read_bytes() + k.read_bytes())
    return c, k, both


def test_haproxy_example(tmp_path, certs):
    c, k, both = certs
    src = (EXAMPLES / "cluster" / "haproxy.cfg").read_text()
    t = dict(re.findall(r"^\s*timeout (\S+) (\S+)", src, re.M))
    assert seconds(t["server"]) >= 35 and seconds(t["client"]) >= 35, t
    assert seconds(t["tunnel"]) >= 3600, "WebSockets need a long tunnel timeout"
    assert "option forwardfor" in src and "option httpchk" in src and "http-check expect" in src
    assert re.search(r"^\s*server \S+ \S+:\d+", src, re.M)
    cfg_ = tmp_path / "haproxy.cfg"
    cfg_.write_text(src.replace("/etc/haproxy/certs/example.com.pem", str(both))
                    .replace("/etc/haproxy/latch-nodes-ca.pem", str(c)))
    p = subprocess.run(["haproxy", "-c", "-f", str(cfg_)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Configuration file is valid" in p.stdout + p.stderr, p.stdout + p.stderr
    assert "WARNING" not in p.stdout + p.stderr, p.stdout + p.stderr
    broken = tmp_path / "broken.cfg"
    broken.write_text(cfg_.read_text().replace("timeout tunnel", "timeout tunel"))
    p = subprocess.run(["haproxy", "-c", "-f", str(broken)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0


def test_nginx_example(tmp_path, certs):
    c, k, _ = certs
    src = (EXAMPLES / "cluster" / "nginx.conf").read_text()
    assert seconds(re.search(r"proxy_read_timeout (\S+);", src).group(1)) >= 35
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in src
    assert "Upgrade $http_upgrade" in src and "proxy_http_version 1.1" in src
    assert re.search(r"max_fails=\d+", src)
    text = (src.replace("/etc/nginx/certs/example.com.pem", str(c))
            .replace("/etc/nginx/certs/example.com.key", str(k))
            .replace("/etc/nginx/latch-nodes-ca.pem", str(c))
            .replace("/run/nginx.pid", str(tmp_path / "nginx.pid"))
            .replace("/var/log/nginx/", str(tmp_path) + "/"))
    assert "/etc/nginx" not in text and "/var/log" not in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "test is successful" in p.stderr, p.stderr
    assert "[warn]" not in p.stderr and "[emerg]" not in p.stderr, p.stderr
    conf.write_text(text.replace("proxy_read_timeout", "proxy_reed_timeout"))
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0


# --------------------------------------------------------------------------------------------
# make install


def make_install(dest, *extra):
    build = Path(LATCHD).resolve().parent
    # -o all: install what is built (under ASan too), never rebuild with other flags here
    return subprocess.run(["make", "-s", "-o", "all", "install", f"DESTDIR={dest}", f"BUILD={build}",
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_make_install_destdir(tmp_path):
    dest = tmp_path / "stage"
    p = make_install(dest)
    assert p.returncode == 0, p.stdout + p.stderr
    files = {str(f.relative_to(dest)): stat.S_IMODE(f.stat().st_mode)
             for f in dest.rglob("*") if f.is_file()}
    expected = {
        "usr/local/bin/latchd": 0o755,
        "usr/local/bin/latch": 0o755,
        "usr/local/share/man/man8/latchd.8": 0o644,
        "usr/local/share/man/man1/latch.1": 0o644,
        "usr/local/lib/systemd/system/latchd.service": 0o644,
        "usr/local/share/doc/latch/examples/single-node.yaml": 0o644,
        "usr/local/share/doc/latch/examples/cluster/latch.yaml": 0o644,
        "usr/local/share/doc/latch/examples/cluster/haproxy.cfg": 0o644,
        "usr/local/share/doc/latch/examples/cluster/nginx.conf": 0o644,
    }
    for f, mode in expected.items():
        assert files.get(f) == mode, (f, oct(files.get(f, 0)), sorted(files))
    assert (dest / "usr/local/lib/systemd/system/latchd.service").read_text() == UNIT.read_text()
    v = subprocess.run([str(dest / "usr/local/bin/latchd"), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert v.returncode == 0 and v.stdout.startswith("latchd ")
    # nothing was written outside DESTDIR's tree
    assert not any(f.startswith(("etc/", "var/")) for f in files)


def test_make_install_prefix_rewrites_the_unit(tmp_path):
    dest = tmp_path / "stage"
    p = make_install(dest, "PREFIX=/opt/latch")
    assert p.returncode == 0, p.stdout + p.stderr
    unit = (dest / "opt/latch/lib/systemd/system/latchd.service").read_text()
    assert "ExecStart=/opt/latch/bin/latchd --config /etc/latch/latch.yaml" in unit
    assert "/usr/local/bin" not in unit
    assert (dest / "opt/latch/bin/latchd").exists()
    assert (dest / "opt/latch/share/man/man8/latchd.8").exists()
