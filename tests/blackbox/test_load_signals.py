"""Reload, key rotation and drain under real load (SPEC.md §2, §5, §8): wrk drives latchd (or
HAProxy in front of two latchd nodes) while the test sends SIGHUPs with good and bad files, runs
`latchd keys rotate`, and SIGTERMs a node. The assertions are correctness counts only (wrk's
completed requests, non-2xx answers, socket errors; what the origin received; the daemon's log
and exit status), never timings or throughput: these machines are shared and noisy.

wrk runs with a long -d and is stopped with SIGINT once the scenario is over (wrk then prints its
summary and calls the script's done()), so the whole scenario is under load however slow the
machine is. These tests load both cores: they are marked `serial` and run in their own pytest
invocation, after the parallel part of the suite (see the Makefile's blackbox target)."""

import hashlib
import json
import re
import signal
import socket
import subprocess
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import authkit as ak
from harness import (RawConn, bypass_app, free_port, get, haproxy_show_stat, have, stop_pid,
                     wait_port)

pytestmark = [pytest.mark.serial,
              pytest.mark.skipif(not have("wrk"), reason="wrk is not installed")]

WIKI = "wiki.localhost"
DRAIN_S = 10

# Counts every answer that is not a 2xx, and every 2xx whose body is not the recording origin's
# echo of the request wrk sent (a truncated or foreign body), per thread; done() adds them up.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; bad = 0; badbody = 0; sample = "" end
function response(status, headers, body)
  n = n + 1
  if status < 200 or status > 299 then
    bad = bad + 1
    if #sample < 400 then sample = sample .. status .. " " .. string.sub(body or "", 1, 120) .. " | " end
  elseif not string.find(body or "", EXPECT, 1, true) then
    badbody = badbody + 1
    if #sample < 400 then sample = sample .. "body " .. string.sub(body or "", 1, 120) .. " | " end
  end
end
function done(summary, latency, requests)
  local t = {requests = summary.requests, responses = 0, non2xx = 0, badbody = 0, sample = "",
             connect = summary.errors.connect, read = summary.errors.read,
             write = summary.errors.write, timeout = summary.errors.timeout,
             status = summary.errors.status}
  for _, th in ipairs(threads) do
    t.responses = t.responses + th:get("n")
    t.non2xx = t.non2xx + th:get("bad")
    t.badbody = t.badbody + th:get("badbody")
    t.sample = t.sample .. th:get("sample")
  end
  io.write(string.format('WRKRESULT {"requests":%d,"responses":%d,"non2xx":%d,"badbody":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"sample":%q}\n',
    t.requests, t.responses, t.non2xx, t.badbody, t.connect, t.read, t.write, t.timeout,
    t.status, t.sample))
end
"""


# --------------------------------------------------------------------------------------------
# helpers

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                          r"SUMMARY: \w+Sanitizer")


def assert_no_sanitizer_report(d):
    """An ASan/UBSan/LSan report on latchd's stderr fails the test (LSan reports at exit: call
    this after the daemon stopped)."""
    m = SANITIZER_RE.search(d.stderr())
    assert not m, f"sanitizer report on latchd {d.pid}'s stderr:\n{d.stderr()[m.start() - 200:][:6000]}"


def stop_clean(d):
    """SIGTERM (nothing is in flight any more), exit status 0, no sanitizer report."""
    rc = d.stop(timeout=DRAIN_S + 10)
    assert rc == 0, f"latchd exited {rc}\n{d.stderr()[-3000:]}"
    assert_no_sanitizer_report(d)


def log_msgs(d):
    """latchd's operational messages (JSON lines on stderr)."""
    out = []
    for line in d.stderr().splitlines():
        try:
            out.append(json.loads(line).get("msg", ""))
        except ValueError:
            pass
    return out


class Wrk:
    """wrk in the background with the counting script; stop() sends SIGINT and parses the
    script's WRKRESULT line into .result (and checks wrk's own summary agrees)."""

    def __init__(self, tmp, port, host, path="/load", headers=(), expect=None, conns=32,
                 threads=2, method="GET", body=None):
        self.tmp = tmp
        self.conns = conns
        script = tmp / "count.lua"
        expect = expect or f'"target": "{path}"'
        setup = f"EXPECT = {json.dumps(expect)}\nwrk.method = {json.dumps(method)}\n"
        if body is not None:
            setup += f"wrk.body = {json.dumps(body)}\n"
        script.write_text(setup + WRK_SCRIPT)
        cmd = ["wrk", f"-t{threads}", f"-c{conns}", "-d120s", "--timeout", "10s", "--latency",
               "-s", str(script), "-H", f"Host: {host}:{port}" if ":" not in host else f"Host: {host}"]
        for k, v in headers:
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(f"http://127.0.0.1:{port}{path}")
        self.out_path = tmp / "wrk.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.result = None

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc, signal.SIGKILL)
            raise AssertionError("wrk did not stop on SIGINT")
        out = self.out_path.read_text(errors="replace")
        self.output = out
        m = re.search(r"^WRKRESULT (.*)$", out, re.M)
        assert m, f"no result from wrk's script:\n{out}"
        self.result = json.loads(m.group(1))
        r = self.result
        # wrk's own summary says the same (its lines are absent when the counts are zero)
        m = re.search(r"(\d+) requests in ", out)
        assert m and int(m.group(1)) == r["requests"], out
        if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
            r.setdefault("summary_errors", True)
        return r

    def assert_clean(self):
        r = self.result
        assert r["requests"] > 0, f"wrk completed no request:\n{self.output}"
        assert r["responses"] == r["requests"], r
        failures = {k: r[k] for k in ("non2xx", "badbody", "connect", "read", "write", "timeout",
                                      "status") if r[k]}
        assert not failures and not r.get("summary_errors"), (
            f"{failures} of {r['requests']} requests failed; sample: {r['sample']}\n{self.output}")


def wait_for(pred, what, timeout=10.0, interval=0.03, d=None):
    """Polls pred(); on timeout fails naming `what` (with the tail of d's stderr if given)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, (f"timed out waiting for {what}" +
                                             (f"\n--- latchd stderr:\n{d.stderr()[-3000:]}" if d else ""))
        time.sleep(interval)


def load_requests(origins, path="/load"):
    return sum(sum(1 for r in list(o.requests) if r["path"] == path) for o in origins)


# --------------------------------------------------------------------------------------------
# 1. ten reloads and a key rotation under wrk

def two_configs(o1, o2):
    """A and B really differ: the wiki app's origin (o1 / o2: the load itself moves), and B has
    one more app (extra.localhost: 404 under A, 200 under B) that probes tell them apart with."""
    base = {"timeouts": {"idle": "30s", "drain": f"{DRAIN_S}s"}}
    a = dict(base, apps=[ak.person_app("wiki", [WIKI], origin=o1.url),
                         bypass_app("pub", ["pub.localhost"])])
    b = dict(base, apps=[ak.person_app("wiki", [WIKI], origin=o2.url),
                         bypass_app("pub", ["pub.localhost"]),
                         bypass_app("extra", ["extra.localhost"])])
    return a, b


def reload_and_confirm(d, config, extra_status):
    """Writes `config`, sends SIGHUP, and waits until a fresh connection sees it."""
    d.reload(config)
    wait_for(lambda: get(d.port, "/probe", host="extra.localhost").status == extra_status,
             f"reload to take effect (extra.localhost {extra_status})", d=d)


def wiki_status(d, tok, how="header"):
    return ak.with_token(d, WIKI, tok, path="/check", how=how).status


@pytest.mark.timeout(90)
def test_ten_reloads_and_key_rotation_under_wrk(latchd, origin_factory, tmp_path):
    o1, o2 = origin_factory(), origin_factory()
    a, b = two_configs(o1, o2)
    d = latchd(a)
    kid1 = ak.signing_kid(d)
    t1 = ak.issue(d, "wiki", "bob@corp.com")
    assert jwt.get_unverified_header(t1)["kid"] == kid1
    assert wiki_status(d, t1) == 200
    wrk = Wrk(tmp_path, d.port, WIKI, headers=[("cf-access-token", t1)])
    kid2 = t2 = None
    try:
        wait_for(lambda: load_requests([o1]) >= 50, "wrk's first requests at the origin")
        for i in range(1, 11):
            reload_and_confirm(d, b if i % 2 else a, 200 if i % 2 else 404)
            assert wrk.running(), f"wrk exited early:\n{wrk.out_path.read_text()}"
            if i == 5:  # rotation mid-run, between two reloads
                p = ak.cli(d, "keys", "rotate")
                assert p.returncode == 0, p.stderr
                kid2 = p.stdout.split("new signing key ")[1].split(";")[0].strip()
                assert kid2 != kid1
                wait_for(lambda: ak.signing_kid(d) == kid2, "the daemon to sign with the new key", d=d)
                t2 = ak.issue(d, "wiki", "alice@corp.com")
                assert jwt.get_unverified_header(t2)["kid"] == kid2
                # under the load: the new key's token, and the old one on a fresh spelling
                assert wiki_status(d, t2) == 200
                assert wiki_status(d, t2, how="cookie") == 200
                assert wiki_status(d, t1, how="cookie") == 200
            time.sleep(0.2)
        time.sleep(0.3)
    finally:
        r = wrk.stop()
    wrk.assert_clean()
    # wrk counts a request when its response is complete. When it stops it abandons the
    # requests in flight on its connections (one at most per connection: wrk does not
    # pipeline), which the origin may already have received; so the origins received between
    # `requests` and `requests + connections`.
    got = load_requests([o1, o2])
    assert r["requests"] <= got <= r["requests"] + wrk.conns, (r, got)
    # the load moved between the two origins with the reloads
    assert load_requests([o1]) > 0 and load_requests([o2]) > 0
    assert not o1.errors and not o2.errors, (o1.errors, o2.errors)
    assert d.alive()
    # the last reload (the 10th, config A) is the one in force, also on a new connection
    assert get(d.port, "/", host="extra.localhost").status == 404
    before = load_requests([o1], "/check"), load_requests([o2], "/check")
    assert wiki_status(d, t1) == 200
    assert (load_requests([o1], "/check"), load_requests([o2], "/check")) == (before[0] + 1,
                                                                              before[1])
    # ten reloads in the log, no refused one, and the new key
    msgs = log_msgs(d)
    assert sum(1 for m in msgs if m == f"reloaded {d.config_path}") == 10, msgs
    assert not [m for m in msgs if m.startswith("reload refused")], msgs
    assert any(m.startswith("signing keys loaded: ") and m.endswith(f"newest {kid2}")
               for m in msgs), msgs
    # after the load: both tokens pass, verified afresh (the cookie spelling) and per the JWKS
    assert {k["kid"] for k in ak.certs(d)["keys"]} == {kid1, kid2}
    for tok in (t1, t2):
        assert wiki_status(d, tok) == 200
        assert wiki_status(d, tok, how="cookie") == 200
        ak.verify_with_jwks(d, tok, ak.aud_of(d, WIKI))
    stop_clean(d)


def new_key_file(keys_dir):
    """A fresh RS256 key as state_dir/keys/<kid>.pem (what `latchd keys rotate` writes)."""
    key = ak.attacker_key()  # any fresh 2048-bit RSA key
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = hashlib.sha256(der).hexdigest()[:32]
    tmp = keys_dir / f".{kid}.tmp"
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    return kid, tmp


@pytest.mark.timeout(90)
def test_every_new_key_is_picked_up(latchd):
    """Regression test for a race the rotation under wrk hit about once in a dozen runs: the
    daemon's poll saw state_dir/keys change when `latchd keys rotate` made its temporary key
    file, read the directory before the rename to <kid>.pem, spent some milliseconds describing
    the keys, and only then recorded the directory's mtime, after the rename: it never looked
    again and kept signing with the old key. Here the rename is placed inside the daemon's read
    on purpose: the temporary file is made, SIGUSR1 (a cheap log reopen) makes the daemon check
    the keys at once, and the rename follows after a delay swept across the time the daemon
    takes to describe its keys (made longer with ten keys). Every key must be picked up."""
    d = latchd({"apps": [ak.person_app("wiki", [WIKI])],
                "keys": {"rotation": "6w", "overlap": "1h"}})
    keys_dir = ak.state_dir(d) / "keys"
    for _ in range(9):
        kid, tmp = new_key_file(keys_dir)
        tmp.rename(keys_dir / f"{kid}.pem")
    wait_for(lambda: any(m.startswith("signing keys loaded: 10,") for m in log_msgs(d)),
             "the daemon to load 10 keys", d=d)
    missed = []
    for delay in (0.001, 0.004, 0.008, 0.015, 0.025):
        kid, tmp = new_key_file(keys_dir)
        d.signal(signal.SIGUSR1)
        time.sleep(delay)
        tmp.rename(keys_dir / f"{kid}.pem")
        deadline = time.monotonic() + 3
        while not any(m.startswith("signing keys loaded: ") and m.endswith(f"newest {kid}")
                      for m in log_msgs(d)):
            if time.monotonic() > deadline:
                missed.append((delay, kid))
                break
            time.sleep(0.02)
    assert not missed, (f"{len(missed)} of 5 new keys never picked up by the daemon "
                        f"(delay, kid): {missed}\n{d.stderr()[-3000:]}")
    t = ak.issue(d, "wiki", "bob@corp.com")  # (the certs answer is too big with 15 keys)
    assert jwt.get_unverified_header(t)["kid"] == kid
    stop_clean(d)


@pytest.mark.timeout(90)
def test_bad_reloads_under_wrk(latchd, origin_factory, tmp_path):
    o1, o2 = origin_factory(), origin_factory()
    a, b = two_configs(o1, o2)
    d = latchd(a)
    t1 = ak.issue(d, "wiki", "bob@corp.com")
    good_b = d.render(b)
    semantic = good_b.replace("decision: bypass", "decision: sometimes", 1)
    assert semantic != good_b
    bad_line = next(i + 1 for i, l in enumerate(semantic.splitlines()) if "sometimes" in l)
    syntax = good_b.replace("apps:", "apps: [", 1)
    bad_rx = [re.compile(re.escape(str(d.config_path)) + rf":{bad_line}:\d+: "),
              re.compile(re.escape(str(d.config_path)) + r":\d+:\d+: ")]
    wrk = Wrk(tmp_path, d.port, WIKI, headers=[("cf-access-token", t1)])
    try:
        wait_for(lambda: load_requests([o1]) >= 50, "wrk's first requests at the origin")
        reload_and_confirm(d, b, 200)
        reload_and_confirm(d, a, 404)
        for text, rx in zip((semantic, syntax), bad_rx):
            before = d.stderr()
            d.config_path.write_text(text)
            d.signal(signal.SIGHUP)
            wait_for(lambda: rx.search(d.stderr()[len(before):]),
                     "the reload's errors (FILE:LINE:COL) on stderr", d=d)
            assert "reload refused" in d.stderr()[len(before):]
            # the running configuration (A) is kept
            assert get(d.port, "/", host="extra.localhost").status == 404
            assert wrk.running()
            time.sleep(0.2)
        reload_and_confirm(d, b, 200)
        reload_and_confirm(d, a, 404)
        time.sleep(0.3)
    finally:
        r = wrk.stop()
    wrk.assert_clean()
    got = load_requests([o1, o2])
    assert r["requests"] <= got <= r["requests"] + wrk.conns, (r, got)  # see the test above
    msgs = log_msgs(d)
    assert sum(1 for m in msgs if m == f"reloaded {d.config_path}") == 4, msgs
    assert sum(1 for m in msgs if m.startswith("reload refused")) >= 2, msgs
    assert d.alive()
    stop_clean(d)


# --------------------------------------------------------------------------------------------
# 2a. SIGTERM drains exactly what is in flight

@pytest.mark.timeout(60)
def test_sigterm_drains_in_flight_exactly(latchd, origin_factory):
    n = 20
    slow = origin_factory(delay=1.5)
    d = latchd({"apps": [bypass_app("slow", ["slow.localhost"], origin=slow.url),
                         bypass_app("pub", ["pub.localhost"])],
                "timeouts": {"drain": f"{DRAIN_S}s", "idle": "30s"}})
    results = {}

    def slow_get(i):
        try:
            with RawConn(d.port, timeout=20) as c:
                c.send(f"GET /slow/{i} HTTP/1.1\r\nHost: slow.localhost:{d.port}\r\n\r\n")
                r = c.read_response()  # a short body raises EOFError
                results[i] = (r.status, r.json()["target"])
        except Exception as e:
            results[i] = (repr(e), None)

    upload_len = 4 << 20
    upload = bytes(range(256)) * (upload_len // 256)
    upload_sent_half = threading.Event()
    term_sent = threading.Event()

    def slow_upload():
        try:
            with RawConn(d.port, timeout=20) as c:
                c.send(f"POST /upload HTTP/1.1\r\nHost: slow.localhost:{d.port}\r\n"
                       f"Content-Length: {upload_len}\r\n\r\n".encode() + upload[:upload_len // 2])
                upload_sent_half.set()
                term_sent.wait(10)
                time.sleep(0.2)  # the second half goes out during the drain
                c.send(upload[upload_len // 2:])
                r = c.read_response()
                results["upload"] = (r.status, r.json())
        except Exception as e:
            results["upload"] = (repr(e), None)

    threads = [threading.Thread(target=slow_get, args=(i,)) for i in range(n)]
    threads.append(threading.Thread(target=slow_upload))
    for t in threads:
        t.start()
    wait_for(lambda: len(slow.requests) >= n and upload_sent_half.is_set(),
             f"{n} requests at the origin and an upload under way")

    # clients that keep opening connections across the SIGTERM: each connection that is
    # accepted must be answered; after the listener closed, connect() is refused
    hammer = {"answered": 0, "dropped": [], "reset": [], "refused_at": None}
    stop_hammer = threading.Event()

    def hammer_loop():
        while not stop_hammer.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            except ConnectionRefusedError:
                if term_sent.is_set():
                    hammer["refused_at"] = hammer["refused_at"] or time.monotonic()
                    return
                continue
            except ConnectionResetError as e:
                # the same race as a reset after connect (below): Python's connect with a
                # timeout polls and reads SO_ERROR, by which time the queued connection that
                # the kernel completed may already have been reset by the listener's close
                hammer["reset"].append(f"connect: {e!r}")
                continue
            except OSError as e:
                hammer["dropped"].append(f"connect: {e!r}")
                continue
            try:
                with RawConn(d.port, sock=s, timeout=10) as c:
                    c.send(f"GET /h HTTP/1.1\r\nHost: pub.localhost:{d.port}\r\n"
                           "Connection: close\r\n\r\n")
                    r = c.read_response()
                    if r.status == 200:
                        hammer["answered"] += 1
                    else:
                        hammer["dropped"].append(r.status)
            except ConnectionResetError as e:
                hammer["reset"].append(repr(e))
            except Exception as e:
                hammer["dropped"].append(repr(e))

    hammers = [threading.Thread(target=hammer_loop) for _ in range(4)]
    for t in hammers:
        t.start()
    time.sleep(0.1)
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    term_sent.set()
    for t in hammers:
        t.join(10)
    stop_hammer.set()
    for t in threads:
        t.join(20)
    try:
        rc = d.proc.wait(DRAIN_S + 5)
    except subprocess.TimeoutExpired:
        rc = None
    exited = time.monotonic()
    d.stopped_by_test = True
    assert not hammer["dropped"], (f"{len(hammer['dropped'])} connections accepted and then "
                                   f"dropped around the SIGTERM: {hammer['dropped'][:5]}")
    # Before the drain fixes every run had 1-7 resets; after the accept-then-shutdown fix one
    # appeared in about one run of ten (a handshake completed between the last accept() and the
    # shutdown()); since the listener drops packets first (a socket filter), 25 runs had none.
    # One is still tolerated: a SYN answered just before the filter whose last ACK comes after.
    assert len(hammer["reset"]) <= 1, (f"{len(hammer['reset'])} connections reset around the "
                                       f"SIGTERM: {hammer['reset'][:5]}")
    assert hammer["refused_at"] is not None, "new connections were never refused after SIGTERM"
    assert hammer["answered"] > 0
    failed = {i: v for i, v in results.items() if i != "upload" and v != (200, f"/slow/{i}")}
    assert len(results) == n + 1 and not failed, f"in-flight requests failed: {failed}"
    st, body = results["upload"]
    assert st == 200, f"the upload in flight failed: {st}"
    assert body["body_bytes"] == upload_len and body["target"] == "/upload"
    assert body["body_sha256"] == hashlib.sha256(upload).hexdigest()
    assert rc == 0, f"latchd exit status after the drain: {rc}\n{d.stderr()[-2000:]}"
    assert exited - t_term < DRAIN_S + 5
    assert_no_sanitizer_report(d)


# --------------------------------------------------------------------------------------------
# 2b. two nodes behind HAProxy, one drained under wrk
#
# What HAProxy needs for zero failures: `retries` + `option redispatch 1` + `retry-on
# conn-failure` take the connections the drained node refuses to the other node, and the health
# check takes it out of the rotation. `retry-on empty-response` is for the one race no server can
# close with HTTP/1.1 keep-alive (RFC 9112 §9.3.1): HAProxy writes a request on an idle
# connection at the instant the draining node closes it. Such a request was provably not
# processed, but HAProxy cannot know that, and L7 retries replay any method unless told not to;
# so the config disables them for non-idempotent methods, as a production config should, and
# the load is GET. A POST load does see that race: HAProxy notices the drained node's FIN on an
# idle connection only when it next polls it, and a POST written there in between is lost
# (HAProxy closes the client connection; measured: 5 of ~1500 POSTs in 1 run of 5), so a POST
# variant could never reliably show zero without replaying POSTs. conn-failure retries (nothing
# was sent) stay on for every method.

HAPROXY_CFG = """
global
    maxconn 2000
    stats socket {tmp}/haproxy.sock mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 10s
    timeout check 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend fe
    bind 127.0.0.1:{port}
    default_backend latchd
backend latchd
    balance roundrobin
    http-request disable-l7-retry if !METH_GET !METH_HEAD !METH_OPTIONS
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host pub.localhost
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    server n1 127.0.0.1:{p1} check
    server n2 127.0.0.1:{p2} check
"""


def haproxy_stats(tmp):
    """{server: {field: value}} from the stats socket (retries wretr, redispatches wredis)."""
    try:
        rows = haproxy_show_stat(tmp / "haproxy.sock")
    except OSError as e:
        return {"error": repr(e)}
    out = {}
    for row in rows:
        if row.get("pxname") == "latchd":
            out[row["svname"]] = {k: row.get(k) for k in ("status", "stot", "wretr", "wredis",
                                                        "eresp", "econ")}
    return out


def haproxy_drain(latchd, origin_factory, tmp_path, method):
    origin = origin_factory(delay=0.02)  # requests are in flight at the SIGTERM
    cfg = {"apps": [bypass_app("pub", ["pub.localhost"], origin=origin.url)],
           "timeouts": {"drain": f"{DRAIN_S}s", "idle": "30s"}}
    n1 = latchd(cfg, name="n1")
    n2 = latchd(cfg, name="n2")
    port = free_port()
    hcfg = tmp_path / "haproxy.cfg"
    hcfg.write_text(HAPROXY_CFG.format(port=port, p1=n1.port, p2=n2.port, tmp=tmp_path))
    chk = subprocess.run(["haproxy", "-c", "-f", str(hcfg)], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    with open(tmp_path / "haproxy.stderr", "wb") as err:
        hap = subprocess.Popen(["haproxy", "-db", "-f", str(hcfg)], stdout=subprocess.DEVNULL,
                               stderr=err)
    stats = None
    try:
        wait_port(port, 10, hap)
        wait_for(lambda: get(port, "/ready", host="pub.localhost").status == 200, "HAProxy up")
        wrk = Wrk(tmp_path, port, "pub.localhost", method=method,
                  body="x" * 100 if method == "POST" else None)
        try:
            def per_node(d):
                return sum(1 for e in d.log_lines() if e.get("path") == "/load")
            wait_for(lambda: per_node(n1) >= 20 and per_node(n2) >= 20,
                     "wrk's requests on both nodes")
            t_term = time.monotonic()
            n1.signal(signal.SIGTERM)
            try:
                rc = n1.proc.wait(DRAIN_S + 5)
            except subprocess.TimeoutExpired:
                rc = None
            exited = time.monotonic()
            n1.stopped_by_test = True
            served2 = len(origin.requests)
            wait_for(lambda: len(origin.requests) >= served2 + 200, "load on the remaining node")
            assert wrk.running()
        finally:
            r = wrk.stop()
            stats = haproxy_stats(tmp_path)
    finally:
        stop_pid(hap, signal.SIGUSR1, 5)
        stop_pid(hap, signal.SIGTERM, 5)
    print(f"wrk: {r}\nhaproxy: {stats}")
    wrk.assert_clean()
    assert rc == 0, f"drained node exit status {rc}\n{n1.stderr()[-2000:]}"
    assert exited - t_term < DRAIN_S + 5
    assert_no_sanitizer_report(n1)
    # every request latchd logged on the drained node was answered 200
    bad = [e for e in n1.log_lines() if e.get("path") == "/load" and e.get("status") != 200]
    assert not bad, bad[:5]
    assert n2.alive()
    stop_clean(n2)


@pytest.mark.timeout(90)
@pytest.mark.skipif(not have("haproxy"), reason="haproxy is not installed")
def test_sigterm_one_node_behind_haproxy_under_wrk(latchd, origin_factory, tmp_path):
    haproxy_drain(latchd, origin_factory, tmp_path, "GET")

