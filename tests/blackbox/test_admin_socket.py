"""The admin socket (SPEC.md §2): state_dir/admin.sock, 0600 from its first instant and removed
at a clean exit, one JSON object per line each way, served by a thread of its own for root and
latchd's own user only. status tells what the daemon runs; reload answers with the errors of a
bad file (the running configuration is kept) and, for a good one, returns once it is in force;
revoke and keys rotate are done by the daemon, in force on the very next request. Garbage,
over-long lines, unknown commands and silent clients never stop the daemon or another client.
One latchd per state_dir; a socket left by a killed daemon does not stop the next. The command
line falls back to state_dir for revoke and keys rotate when no daemon runs, and says so."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import yaml

import authkit as ak
from harness import LATCHD, RawConn, Latchd, block_app, bypass_app, free_port, get, stop_pid, wait_port

NOT_RUNNING = "latchd is not running (no daemon on {}/admin.sock)"


def cfg(flip_open=False, **extra):
    flip = (bypass_app if flip_open else block_app)("flip", ["flip.localhost"])
    c = {"apps": [bypass_app("pub", ["pub.localhost"]), flip,
                  ak.person_app("wiki", ["wiki.localhost"]),
                  ak.person_app("blog", ["blog.localhost"])]}
    c.update(extra)
    return c


def sock_path(d):
    """state_dir/admin.sock of d's configuration (tests may point state_dir elsewhere)."""
    return Path(yaml.safe_load(d.config_path.read_text())["state_dir"]) / "admin.sock"


class Admin:
    """A raw client of the admin socket: one JSON line out, one JSON line back."""

    def __init__(self, d, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(sock_path(d)))
        self.buf = b""

    def send_raw(self, data):
        self.s.sendall(data)

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError(f"admin socket closed; had {self.buf[:200]!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def call(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")
        return self.read()

    def closed_within(self, timeout):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def admin(d, *args, config=None):
    """`latchd ARGS --config FILE` (text)."""
    return subprocess.run([LATCHD, *args, "--config", str(config or d.config_path)],
                          capture_output=True, text=True, timeout=30)


def st(d, host, tok):
    return get(d.port, "/", host=host, headers=[("cf-access-token", tok)])


def status(d):
    c = Admin(d)
    try:
        r = c.call({"cmd": "status"})
    finally:
        c.close()
    assert r["ok"] is True, r
    return r


# --------------------------------------------------------------------------------------------
# the socket file


def test_socket_is_0600_whatever_the_umask_and_removed_at_exit(tmp_path):
    d = Latchd(tmp_path / "d", cfg())
    out = open(d.stderr_path, "ab")
    # umask 0: a socket bound without care would be srwxrwxrwx
    proc = subprocess.Popen([LATCHD, "--config", str(d.config_path)], stdout=out, stderr=out,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0))
    try:
        wait_port(d.port, 15, proc)
        p = sock_path(d)
        st_ = os.lstat(p)
        assert stat.S_ISSOCK(st_.st_mode)
        assert stat.S_IMODE(st_.st_mode) == 0o600, oct(st_.st_mode)
        assert st_.st_uid == os.geteuid()
        assert stat.S_IMODE(os.stat(ak.state_dir(d)).st_mode) == 0o700
        assert status(d)["pid"] == proc.pid
    finally:
        rc = stop_pid(proc)
        out.close()
    assert rc == 0, d.stderr()
    assert not sock_path(d).exists(), "the admin socket outlived a clean exit"
    p = admin(d, "status")
    assert p.returncode == 1 and p.stderr.strip() == NOT_RUNNING.format(ak.state_dir(d)), p


def test_long_state_dir_path(latchd, tmp_path):
    # sun_path holds 107 bytes: a deeper state_dir is reached through its directory descriptor
    deep = tmp_path / ("s" * 60) / ("t" * 60) / "state"
    d = latchd(cfg(state_dir=str(deep)))
    assert len(str(deep / "admin.sock")) > 108
    assert stat.S_ISSOCK(os.lstat(deep / "admin.sock").st_mode)
    p = admin(d, "status")
    assert p.returncode == 0 and f"pid {d.pid}" in p.stdout, p
    p = admin(d, "revoke", "--email", "bob@corp.com")
    assert p.returncode == 0 and f"latchd pid {d.pid}" in p.stdout, p
    assert d.stop() == 0
    assert not (deep / "admin.sock").exists()


# --------------------------------------------------------------------------------------------
# status


def test_status_fields(latchd):
    d = latchd(cfg(workers=2))
    kid = ak.signing_kid(d)
    r = status(d)
    assert r["pid"] == d.pid
    assert r["workers"] == 2
    assert r["version"] == subprocess.run([LATCHD, "--version"], capture_output=True,
                                          text=True).stdout.split()[1]
    assert r["config"] == str(d.config_path.resolve())
    assert r["state_dir"] == str(ak.state_dir(d))
    assert 0 <= r["uptime_s"] < 60
    assert r["store"] == {"backend": "embedded", "up": True}
    assert [k["kid"] for k in r["keys"]] == [kid]
    assert r["keys"][0]["signing"] is True and 0 <= r["keys"][0]["age_s"] < 60
    assert r["revocations"] == 0
    assert r["config_generation"] == 1 and r["last_reload"] is None
    assert r["draining"] is False
    # open connections: the sum over the workers
    conns = [RawConn(d.port) for _ in range(5)]
    try:
        for c in conns:
            c.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
            assert c.read_response().status == 200
        assert status(d)["connections"] >= 5
    finally:
        for c in conns:
            c.close()
    assert ak.wait_until(lambda: status(d)["connections"] == 0, timeout=5), status(d)
    # a revocation and a reload show
    assert admin(d, "revoke", "--email", "bob@corp.com").returncode == 0
    assert admin(d, "reload").returncode == 0
    r = status(d)
    assert r["revocations"] == 1 and r["config_generation"] == 2
    assert r["last_reload"]["ok"] is True and r["last_reload"]["errors"] == []
    # the command line: a human summary, or the raw reply with --json
    p = admin(d, "status")
    assert p.returncode == 0, p.stderr
    assert f"pid {d.pid}" in p.stdout and kid in p.stdout and "workers:       2" in p.stdout
    assert "generation 2" in p.stdout and "revocations:   1" in p.stdout
    p = admin(d, "status", "--json")
    assert p.returncode == 0 and p.stdout.count("\n") == 1
    j = json.loads(p.stdout)
    assert j["pid"] == d.pid and j["keys"][0]["kid"] == kid and j["ok"] is True
    assert admin(d, "status", "extra").returncode == 64
    assert admin(d, "status", "--bogus", "x").returncode == 64


# --------------------------------------------------------------------------------------------
# reload


def test_reload_bad_file_answers_errors_and_keeps_serving(latchd):
    d = latchd(cfg(False))
    good = d.config_path.read_text()
    bad = good.replace("decision: bypass", "decision: sometimes", 1)
    assert bad != good
    bad_line = next(i + 1 for i, l in enumerate(bad.splitlines()) if "sometimes" in l)
    d.config_path.write_text(bad)
    # a keep-alive connection survives the refused reload
    with RawConn(d.port) as keep:
        keep.send(f"GET / HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        assert keep.read_response().status == 200
        p = admin(d, "reload")
        assert p.returncode == 2, p
        rx = re.compile(re.escape(str(d.config_path)) + rf":{bad_line}:\d+: \S")
        assert rx.search(p.stderr), p.stderr
        c = Admin(d)
        r = c.call({"cmd": "reload"})
        c.close()
        assert r["ok"] is False and r["errors"], r
        assert all(re.match(r"^.+:\d+:\d+: .+", e) for e in r["errors"]), r
        assert any(rx.match(e) for e in r["errors"]), r
        keep.send(f"GET /again HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n\r\n")
        assert keep.read_response().json()["path"] == "/again"
    assert d.alive()
    assert get(d.port, "/", host="flip.localhost").status == 403
    s = status(d)
    assert s["config_generation"] == 1 and s["last_reload"]["ok"] is False
    assert any(rx.match(e) for e in s["last_reload"]["errors"])
    # unparsable YAML
    d.config_path.write_text("listen: [{address: \n  - broken")
    p = admin(d, "reload")
    assert p.returncode == 2 and re.search(re.escape(str(d.config_path)) + r":\d+:\d+: ", p.stderr), p
    # a listen address that changed needs a restart: refused, not half-applied
    d.write_config(dict(cfg(True), listen=[{"address": f"127.0.0.1:{free_port()}"}]))
    p = admin(d, "reload")
    assert p.returncode == 2 and "listen addresses changed" in p.stderr, p
    assert get(d.port, "/", host="flip.localhost").status == 403
    # a good file: in force when the command returns (no sleep, no retry)
    d.write_config(cfg(True))
    p = admin(d, "reload")
    assert p.returncode == 0, p.stderr
    assert "reloaded" in p.stdout and "generation 2" in p.stdout
    for _ in range(5):
        assert get(d.port, "/", host="flip.localhost").status == 200
    s = status(d)
    assert s["config_generation"] == 2 and s["last_reload"]["ok"] is True


# --------------------------------------------------------------------------------------------
# revoke and keys rotate


def test_revoke_through_socket_refuses_the_next_request(latchd):
    d = latchd(cfg())
    bob = ak.issue(d, "wiki", "bob@corp.com")
    alice = ak.issue(d, "wiki", "alice@corp.com")
    blog = ak.issue(d, "blog", "carol@corp.com")
    assert st(d, "wiki.localhost", bob).status == 200  # verified and cached
    p = admin(d, "revoke", "--email", "BOB@corp.com")
    assert p.returncode == 0, p.stderr
    assert "user bob@corp.com" in p.stdout and f"latchd pid {d.pid}" in p.stdout
    assert "not running" not in p.stderr
    r = st(d, "wiki.localhost", bob)  # the very next request, no sleep
    assert r.status == 401 and r.json()["token_error"] == "revoked", r
    assert st(d, "wiki.localhost", alice).status == 200
    # by app, through the raw protocol
    assert st(d, "blog.localhost", blog).status == 200
    c = Admin(d)
    r = c.call({"cmd": "revoke", "app": "blog"})
    assert r["ok"] is True and r["revoked"] == "app" and r["key"] == "blog" and r["pid"] == d.pid
    assert st(d, "blog.localhost", blog).status == 401
    assert st(d, "wiki.localhost", alice).status == 200
    # refusals: nothing is revoked
    for bad in ({"cmd": "revoke", "app": "nosuch"}, {"cmd": "revoke"},
                {"cmd": "revoke", "email": "a@b.c", "app": "wiki"},
                {"cmd": "revoke", "email": "a@evil.com@corp.com"}, {"cmd": "revoke", "email": 7}):
        r = c.call(bad)
        assert r["ok"] is False and r["error"], (bad, r)
    c.close()
    assert st(d, "wiki.localhost", alice).status == 200
    p = admin(d, "revoke", "--app", "nosuch")
    assert p.returncode == 1 and "nosuch" in p.stderr, p
    assert admin(d, "revoke", "--app", "wiki", "--email", "x@y.z").returncode == 64
    assert admin(d, "revoke").returncode == 64
    assert status(d)["revocations"] == 2
    assert "revoke" in d.auth_log.read_text()


def test_keys_rotate_through_socket_is_immediate(latchd):
    d = latchd(cfg())
    kid1 = ak.signing_kid(d)
    t1 = ak.issue(d, "wiki", "bob@corp.com")
    assert st(d, "wiki.localhost", t1).status == 200
    p = admin(d, "keys", "rotate")
    assert p.returncode == 0, p.stderr
    kid2 = p.stdout.split("new signing key ")[1].split(";")[0].strip()
    assert kid2 != kid1 and f"latchd pid {d.pid}" in p.stdout
    certs = ak.certs(d)  # immediately: no file poll
    assert certs["public_cert"]["kid"] == kid2
    assert {k["kid"] for k in certs["keys"]} == {kid1, kid2}
    assert st(d, "wiki.localhost", t1).status == 200  # old tokens keep verifying
    ak.verify_with_jwks(d, t1, ak.aud_of(d, "wiki.localhost"))
    t2 = ak.issue(d, "wiki", "alice@corp.com")
    assert jwt.get_unverified_header(t2)["kid"] == kid2
    assert st(d, "wiki.localhost", t2).status == 200
    # raw protocol: the reply names the new key and lists those that verify
    c = Admin(d)
    r = c.call({"cmd": "keys rotate"})
    c.close()
    assert r["ok"] is True and r["pid"] == d.pid
    assert r["kid"] not in (kid1, kid2) and r["keys"][0]["kid"] == r["kid"]
    assert {k["kid"] for k in r["keys"]} == {kid1, kid2, r["kid"]}
    assert ak.signing_kid(d) == r["kid"]
    assert [k["kid"] for k in status(d)["keys"]] == [k["kid"] for k in r["keys"]]


# --------------------------------------------------------------------------------------------
# hostile or clumsy clients


def test_garbage_long_lines_and_unknown_commands(latchd):
    d = latchd(cfg())
    c = Admin(d)
    c.send_raw(b"garbage\n")
    r = c.read()
    assert r["ok"] is False and "JSON" in r["error"]
    c.send_raw(b"\n   \n[1,2]\n")  # blank lines are skipped; an array is not a request
    assert c.read()["ok"] is False
    assert c.call({"cmd": "launch missiles"})["ok"] is False
    assert "unknown command" in c.call({"cmd": "nope"})["error"]
    assert c.call({"command": "status"})["ok"] is False
    assert c.call({"cmd": 5})["ok"] is False
    c.send_raw(b'{"cmd":"status","cmd":"reload"}\n')  # duplicate keys
    assert c.read()["ok"] is False
    c.send_raw(b"\x00\xff\xfe{\n")
    assert c.read()["ok"] is False
    # the connection still works after all of that; pipelined requests answer in order
    c.send_raw(b'{"cmd":"status"}\n{"cmd":"nope"}\n{"cmd":"status"}\n')
    a, b, e = c.read(), c.read(), c.read()
    assert a["ok"] and a["pid"] == d.pid and b["ok"] is False and e["ok"] and e["pid"] == d.pid
    c.close()
    # an over-long line: an error, then the connection closes (no way to resync)
    c = Admin(d)
    c.send_raw(b"x" * 20000)
    r = c.read()
    assert r["ok"] is False and "longer than" in r["error"], r
    assert c.closed_within(5)
    c.close()
    # the daemon serves on
    assert d.alive()
    assert get(d.port, "/", host="pub.localhost").status == 200
    assert status(d)["pid"] == d.pid


def test_silent_clients_do_not_block_others(latchd):
    d = latchd(cfg())
    silent = [Admin(d) for _ in range(24)]  # more than the slots the daemon keeps
    half = Admin(d)
    half.send_raw(b'{"cmd":"sta')  # a request that never ends
    try:
        t0 = time.monotonic()
        p = admin(d, "status")
        assert p.returncode == 0 and f"pid {d.pid}" in p.stdout, p
        assert time.monotonic() - t0 < 3, "a silent client held up another's status"
        r = status(d)
        assert r["pid"] == d.pid
        assert get(d.port, "/", host="pub.localhost").status == 200
    finally:
        for s in silent:
            s.close()
        half.close()
    # and a silent client does not hold up the shutdown
    lurker = Admin(d)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    lurker.close()
    assert not sock_path(d).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_peer_credentials_refuse_other_users(latchd, tmp_path):
    d = latchd(cfg())
    # even if someone loosened the socket's mode, a user other than root and latchd's own is
    # refused: reach the same socket through a hard link in a directory anybody may enter
    pub = Path(f"/tmp/latch-peercred-{os.getpid()}-{d.port}")
    pub.mkdir(mode=0o755)
    try:
        link = pub / "admin.sock"
        os.link(sock_path(d), link)
        os.chmod(link, 0o666)
        probe = ("import json,socket,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])\n"
                 "s.sendall(b'{\"cmd\":\"status\"}\\n'); b=b''\n"
                 "while b'\\n' not in b:\n"
                 "    c=s.recv(4096)\n"
                 "    if not c: break\n"
                 "    b+=c\n"
                 "print(b.decode())\n")
        p = subprocess.run(["/usr/bin/python3", "-c", probe, str(link)], capture_output=True,
                           text=True, timeout=20, user=65534, group=65534)
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)
        assert r["ok"] is False and "permission denied" in r["error"], r
        assert "pid" not in r
        os.chmod(link, 0o600)
    finally:
        for f in pub.glob("*"):
            f.unlink()
        pub.rmdir()
    assert "refused uid 65534" in d.stderr()
    assert status(d)["pid"] == d.pid


# --------------------------------------------------------------------------------------------
# one daemon per state_dir


def test_second_daemon_on_same_state_dir_is_refused(latchd, tmp_path):
    d1 = latchd(cfg())
    d2 = Latchd(tmp_path / "second", cfg(state_dir=str(ak.state_dir(d1))))
    d2.start(wait=False)
    try:
        rc = d2.proc.wait(15)
    finally:
        stop_pid(d2.proc)
        d2.close_files()
    assert rc == 1, d2.stderr()
    err = d2.stderr()
    assert "another latchd" in err and str(ak.state_dir(d1)) in err and str(d1.pid) in err, err
    # the first keeps running, keeps its socket, and nothing of the second answers
    assert d1.alive()
    assert stat.S_ISSOCK(os.lstat(sock_path(d1)).st_mode)
    assert status(d1)["pid"] == d1.pid
    assert get(d1.port, "/", host="pub.localhost").status == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d2.port), timeout=1).close()


def test_stale_socket_from_killed_daemon(latchd, tmp_path):
    d1 = latchd(cfg())
    port, state = d1.port, ak.state_dir(d1)
    os.kill(d1.pid, signal.SIGKILL)
    d1.proc.wait(10)
    d1.stopped_by_test = True
    d1.close_files()
    assert stat.S_ISSOCK(os.lstat(state / "admin.sock").st_mode), "expected a stale socket"
    # a stale socket counts as "not running" (connect: ECONNREFUSED)
    p = admin(d1, "status")
    assert p.returncode == 1 and p.stderr.strip() == NOT_RUNNING.format(state), p
    p = admin(d1, "reload")
    assert p.returncode == 1 and NOT_RUNNING.format(state) in p.stderr, p
    # a new daemon removes it and starts
    d2 = latchd(cfg(state_dir=str(state)), port=port)
    assert "did not exit cleanly" in d2.stderr()
    assert status(d2)["pid"] == d2.pid
    assert admin(d2, "status").returncode == 0


def test_socket_path_taken_by_something_else(latchd, tmp_path):
    state = tmp_path / "state-file"
    state.mkdir(mode=0o700)
    (state / "admin.sock").write_text("not a socket")
    d = Latchd(tmp_path / "d", cfg(state_dir=str(state)))
    d.start(wait=False)
    try:
        rc = d.proc.wait(15)
    finally:
        stop_pid(d.proc)
        d.close_files()
    assert rc == 1 and "not a socket" in d.stderr(), d.stderr()
    assert (state / "admin.sock").read_text() == "not a socket"


# --------------------------------------------------------------------------------------------
# the command line without a daemon


def test_cli_without_daemon(tmp_path, latchd):
    o = ak.offline(tmp_path / "o", cfg())
    state = ak.state_dir(o)
    msg = NOT_RUNNING.format(state)
    for cmd in (["status"], ["status", "--json"], ["reload"]):
        p = admin(o, *cmd)
        assert p.returncode == 1 and p.stderr.strip() == msg and p.stdout == "", (cmd, p)
    # revoke and keys rotate work on state_dir directly, and say so
    p = admin(o, "revoke", "--email", "Bob@Corp.com")
    assert p.returncode == 0, p.stderr
    assert msg in p.stderr and "directly" in p.stderr
    assert "user bob@corp.com" in p.stdout and "latchd pid" not in p.stdout
    assert json.loads((state / "revocations.json").read_text())["emails"]["bob@corp.com"] > 0
    p = admin(o, "revoke", "--app", "nosuch")
    assert p.returncode == 1 and msg in p.stderr and "nosuch" in p.stderr
    p = admin(o, "keys", "rotate")
    assert p.returncode == 0 and msg in p.stderr, p
    kid = p.stdout.split("new signing key ")[1].split(";")[0].strip()
    assert (state / "keys" / f"{kid}.pem").exists()
    # usage and configuration errors come first
    assert admin(o, "revoke").returncode == 64
    assert admin(o, "keys", "rotate", "extra").returncode == 64
    assert admin(o, "reload", "--bogus", "x").returncode == 64
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [{address: nowhere}]\nstate_dir: 7\n")
    p = admin(o, "status", config=bad)
    assert p.returncode == 2 and re.search(re.escape(str(bad)) + r":\d+:\d+: ", p.stderr), p
    # a daemon started afterwards has what the fallbacks wrote
    d = latchd(cfg(state_dir=str(state)))
    s = status(d)
    assert s["revocations"] == 1 and s["keys"][0]["kid"] == kid
    p = admin(d, "status")
    assert p.returncode == 0 and not p.stderr


def test_help_lists_admin_commands():
    p = subprocess.run([LATCHD, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    for word in ("latchd status", "latchd reload", "--json", "admin.sock", "keys rotate",
                 "revoke", "64"):
        assert word in p.stdout, word
    p = subprocess.run([LATCHD, "frobnicate", "--config", "/nonexistent"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 64
