"""Several latchd nodes sharing one real Redis (`store: redis://…`, SPEC.md §2, §5, §7, §10).

Each node has its own config file and its own state_dir, as separate machines would, and the same
public address: node B listens on 127.0.0.1:P, node A on 127.0.0.2:P, node C on 127.0.0.3:P (Linux
answers all of 127/8). libcurl (the CLI, curl) resolves *.localhost to 127.0.0.1 by itself, so the
CLI talks to B; Chromium is started with `--host-resolver-rules=MAP *.localhost 127.0.0.2`, so the
browser talks to A; the Python HTTP client picks a node per request. One test puts a real HAProxy
in front, for a node killed while it holds the CLI's long poll.

What is proved: the handoff sealed on A is delivered by B to a CLI parked there, in one poll (B is
woken, not polled again); PIN, OIDC and grant state made on one node is used on the other; a
revocation on A refuses the token on B within 1 s; a key rotated on A is served and accepted by B;
a service token made on A admits on B and C with no config edit; with Redis down, issued tokens
still pass everywhere, the endpoints that need shared state answer 503 at once, and everything comes
back without a restart once Redis does, even empty (the nodes push their state back); a node killed
mid-handoff loses nothing another cannot finish; `latchd check` refuses a bad store_key_file; a node
with another store key does not make the others' keys unusable; garbage in Redis crashes nothing."""

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import yaml

import authkit as ak
from browser import Client, form_fields, idp_factory, oidc_login  # noqa: F401 (fixture)
from clikit import (EMAIL, Sodium, b64u, cli_factory, jwt_claims,  # noqa: F401 (fixture)
                    needs_browser, printed)
from harness import LATCHD, Latchd, RawConn, free_port, haproxy_show_stat, stop_pid, wait_port
from rediskit import REDIS_SERVER, redis, redis_factory  # noqa: F401

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs redis-server")]

A, B, C, D = "127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.4"
TO_A = f"MAP *.localhost {A}"           # Chromium's resolver rule: the browser goes to node A
HAPROXY = "/usr/sbin/haproxy"
ANSWER_S = 5.0                          # "answers within a few seconds": a hang detector, not a benchmark


# --------------------------------------------------------------------------------------------
# nodes

def write_store_key(path, nbytes=32):
    """What `head -c32 /dev/urandom | base64` writes."""
    path.write_text(base64.b64encode(os.urandom(nbytes)).decode() + "\n")
    return path


class Node(Latchd):
    """One latchd on addr:port (the cluster's common port), its own config and state_dir."""

    def __init__(self, tmp, config, addr, port, name):
        self.addr, self.name = addr, name
        super().__init__(tmp, config, port=port)

    def render(self, config):
        cfg = dict(config)
        cfg.setdefault("listen", [{"address": f"{self.addr}:{self.port}"}])
        return super().render(cfg)

    def start(self, wait=True):
        super().start(wait=False)
        if wait:
            try:
                wait_port(self.port, 15, self.proc, host=self.addr)
            except AssertionError as e:
                raise AssertionError(f"node {self.name}: {e}\n--- stderr:\n{self.stderr()}") from None
        return self

    def req(self, path="/", host="api", headers=(), method="GET", body=None, timeout=10.0):
        """One request to this node (Connection: close). `host` is an app name (made
        <name>.localhost:P) or a full host[:port]."""
        if "." not in host:
            host = f"{host}.localhost:{self.port}"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        with RawConn(self.port, host=self.addr, timeout=timeout) as c:
            c.send(data)
            return c.read_response(head_request=(method == "HEAD"))

    def with_token(self, token, host="api", path="/"):
        return self.req(path, host, headers=[("cf-access-token", token)])

    def certs(self):
        r = self.req("/cdn-cgi/access/certs", "auth")
        assert r.status == 200, (self.name, r)
        return r.json()

    def kids(self):
        return {k["kid"] for k in self.certs()["keys"]}

    def signer(self):
        return self.certs()["public_cert"]["kid"]

    def aud(self, host="api"):
        r = self.req("/cdn-cgi/access/app", host)
        assert r.status == 200, (self.name, r)
        return r.json()["aud"]

    def entries(self, pred):
        return [e for e in self.log_lines() if pred(e)]

    def pins(self, email):
        return re.findall(r"one-time PIN for " + re.escape(email) + r" \(app [^)]*\): (\d{8})",
                          self.stderr())


class Cluster:
    """One Redis, one store key file, one public port; nodes made from the same config (apps
    api and api2 for example.com people, ci for the service token `deploy` by name, ops for
    `ops-bot`, robots for any valid service token; the one-time PIN through the console
    mailer)."""

    def __init__(self, tmp, redis):
        self.tmp = Path(tmp)
        self.redis = redis
        self.port = free_port()
        self.key = write_store_key(self.tmp / "store.key")
        self.nodes = []
        self.idps = []

    def config(self, key_file=None, **extra):
        p = self.port

        def person(name):
            return {"name": name, "domains": [f"{name}.localhost:{p}"], "origin": "echo",
                    "policies": [{"name": f"{name}-staff", "decision": "allow",
                                  "include": [{"email_domain": "example.com"}]}]}

        cfg = {"workers": 2, "store": self.redis.url, "store_key_file": str(key_file or self.key),
               "auth_domain": f"auth.localhost:{p}", "session_duration": "1h",
               "identity_providers": [{"name": "email-code", "type": "onetimepin",
                                       "mail": "console", "from": "access@example.com"},
                                      *self.idps],
               "apps": [person("api"), person("api2"),
                        {"name": "ci", "domains": [f"ci.localhost:{p}"], "origin": "echo",
                         "policies": [{"name": "deploy-only", "decision": "service_auth",
                                       "include": [{"service_token": "deploy"}]}]},
                        {"name": "robots", "domains": [f"robots.localhost:{p}"], "origin": "echo",
                         "policies": [{"name": "any-robot", "decision": "service_auth",
                                       "include": [{"any_valid_service_token": {}}]}]},
                        {"name": "ops", "domains": [f"ops.localhost:{p}"], "origin": "echo",
                         "policies": [{"name": "ops-only", "decision": "service_auth",
                                       "include": [{"service_token": "ops-bot"}]}]}]}
        cfg.update(extra)
        return cfg

    def node(self, name, addr, start=True, key_file=None, **extra):
        n = Node(self.tmp / f"node-{name}", self.config(key_file, **extra), addr, self.port, name)
        self.nodes.append(n)
        return n.start() if start else n

    def url(self, app, path="/"):
        return f"http://{app}.localhost:{self.port}{path}"

    @property
    def auth(self):
        return f"http://auth.localhost:{self.port}"

    def kill(self, n, sig=signal.SIGKILL):
        n.stopped_by_test = True
        os.kill(n.pid, sig)
        n.proc.wait(10)
        n.close_files()

    def finish(self, failed):
        """Every node still running gets SIGTERM at once, then each must exit 0 within 10 s; a
        node that died during the test (not killed by it) fails the test."""
        problems, stopping = [], []
        for n in self.nodes:
            if n.proc is None:
                continue
            if not n.stopped_by_test and not n.alive():
                problems.append(f"node {n.name} ({n.addr}) died during the test (status "
                                f"{n.proc.returncode})\n--- stderr:\n{n.stderr()[-3000:]}")
            if n.alive():
                n.stopped_by_test = True
                n.signal(signal.SIGTERM)
                stopping.append(n)
        for n in stopping:
            rc = n.stop(timeout=10)   # already signalled: waits (SIGKILL after 10 s: rc None)
            if rc != 0:
                problems.append(f"node {n.name} exited with {rc} after SIGTERM\n"
                                f"--- stderr:\n{n.stderr()[-2000:]}")
        if problems:
            if failed:
                print("\n".join(problems))
            else:
                pytest.fail("\n".join(problems))


@pytest.fixture
def cluster(tmp_path, redis, request):
    c = Cluster(tmp_path, redis)
    yield c
    c.finish(getattr(request.node, "_failed", False))


# --------------------------------------------------------------------------------------------
# helpers

def admin(n, *args, check=True):
    """`latchd <args> --config <n's file>` (reaches n's admin socket when n runs)."""
    return ak.cli(n, *args, check=check)


def issue(n, email, app="api"):
    return ak.issue(n, app, email)


def service_token(n, name):
    """`latchd service-token create NAME --config <n's file>`: (client id, secret)."""
    p = admin(n, "service-token", "create", name)
    cid = re.search(r"^CF-Access-Client-Id:\s*(\S+)", p.stdout, re.M)
    sec = re.search(r"^CF-Access-Client-Secret:\s*(\S+)", p.stdout, re.M)
    assert cid and sec, p.stdout + p.stderr
    return cid.group(1), sec.group(1)


def st_headers(cid, secret):
    return [("CF-Access-Client-Id", cid), ("CF-Access-Client-Secret", secret)]


def next_second():
    """Revocations are "issued before now" to the second: step into the next one."""
    time.sleep(1.02 - (time.time() % 1.0))


def deadline_poll(pred, timeout, interval=0.05):
    """Polls pred every `interval` until it is true or `timeout` passed; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def refused_everywhere(nodes, token, host="api", timeout=5.0):
    """Polls until every node answers 401 to `token` (a revocation made through one node's
    config reaches every node, that one included, asynchronously: up to ~0.5 s seen on a quiet
    machine; the deadline is generous because the machine is shared, not the promise)."""
    return deadline_poll(lambda: all(n.with_token(token, host).status == 401 for n in nodes), timeout)


def admitted_everywhere(nodes, host, headers, timeout=5.0):
    """Polls until every node admits a request with `headers` (a service token made through
    one node's config is merged by every node asynchronously)."""
    return deadline_poll(lambda: all(n.req("/", host, headers).status == 200 for n in nodes), timeout)


def redis_values(redis):
    """Every value in Redis, whatever its type, as one bytes blob per key."""
    out = {}
    for k in redis.keys():
        t = redis.type_of(k)
        if t == "string":
            v = redis.cmd("GET", k) or b""
        elif t == "hash":
            v = b"\n".join(redis.cmd("HGETALL", k))
        elif t == "set":
            v = b"\n".join(redis.cmd("SMEMBERS", k))
        elif t == "list":
            v = b"\n".join(redis.cmd("LRANGE", k, 0, -1))
        elif t == "zset":
            v = b"\n".join(redis.cmd("ZRANGE", k, 0, -1, "WITHSCORES"))
        else:
            v = b""
        out[k] = v
    return out


# a private key in the clear: PEM, PKCS#8 DER (version 0 + rsaEncryption) raw or in base64, a
# private JWK's members
PRIVATE_KEY_RE = re.compile(rb"PRIVATE KEY|\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
                            rb"|MIIE[uvw][A-Za-z0-9+/]{2}BADANBgkqhkiG9w0BAQEF|\"(d|dp|dq|qi)\"\s*:\s*\"")


def otp_form(cl, cluster, app="api", path="/"):
    """Opens the app in `cl` (its current node) up to the PIN form; returns its csrf."""
    r, chain = cl.follow(cluster.url(app, path))
    assert r.status == 200 and "Sign in with your email" in r.text, (r, [x.url for x in chain])
    return form_fields(r.text)["csrf"]


def otp_send(cl, cluster, node, csrf, email):
    """Posts the email (to `cl`'s current node, which must be `node`); returns the PIN that
    node's console mailer printed."""
    before = len(node.pins(email))
    p = cl.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email})
    assert p.status == 200 and "Check your email" in p.text, p
    assert deadline_poll(lambda: len(node.pins(email)) > before, 10), \
        f"node {node.name} printed no PIN for {email}"
    return node.pins(email)[-1]


def is_json_503(r):
    if r.status != 503:
        return False
    try:
        return r.json().get("error") == "store_unavailable"
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# latchd check: store_key_file

CHECK_CFG = """listen:
  - address: 127.0.0.1:{port}
state_dir: {tmp}/state
store: {store}
store_key_file: {key}
auth_domain: auth.localhost:{port}
apps:
  - name: api
    domains: [api.localhost]
    origin: echo
    policies:
      - {{ name: staff, decision: allow, include: [{{ email_domain: example.com }}] }}
"""
KEY_LINE = 5   # the line of store_key_file above


def bad_key(tmp, kind):
    p = tmp / "store.key"
    if kind == "missing":
        return tmp / "no-such.key"
    if kind == "directory":
        d = tmp / "keydir"
        d.mkdir()
        return d
    if kind == "empty":
        p.write_text("")
    elif kind == "16 bytes":
        write_store_key(p, 16)
    elif kind == "48 bytes":
        write_store_key(p, 48)
    elif kind == "not base64":
        p.write_text("this is not base64 at all!!\n")
    elif kind == "raw 32 bytes":
        p.write_bytes(os.urandom(32))
    return p


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "16 bytes", "48 bytes",
                                  "not base64", "raw 32 bytes"])
def test_check_refuses_a_bad_store_key_file(tmp_path, kind):
    key = bad_key(tmp_path, kind)
    port = free_port()
    cfg = tmp_path / "latch.yaml"
    cfg.write_text(CHECK_CFG.format(port=port, tmp=tmp_path, store=f"redis://127.0.0.1:{free_port()}/0",
                                    key=key))
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2, (kind, p.returncode, p.stdout, p.stderr)
    lines = [l for l in (p.stderr + p.stdout).splitlines() if l.startswith(f"{cfg}:")]
    named = [l for l in lines if "store_key_file" in l]
    assert named, (kind, p.stderr)
    m = re.match(re.escape(str(cfg)) + r":(\d+):(\d+): ", named[0])
    assert m and int(m.group(1)) == KEY_LINE, (kind, named)
    # and the daemon itself refuses to start on it, saying why, instead of running unsealed
    d = subprocess.run([LATCHD, "--config", str(cfg)], capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert d.returncode not in (0, None) and "store_key_file" in d.stderr, (kind, d.returncode, d.stderr)


def test_check_accepts_a_good_store_key_file_and_requires_one(tmp_path, redis):
    port = free_port()
    key = write_store_key(tmp_path / "store.key")
    cfg = tmp_path / "latch.yaml"
    cfg.write_text(CHECK_CFG.format(port=port, tmp=tmp_path, store=redis.url, key=key))
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, (p.stdout, p.stderr)
    # redis without store_key_file: refused, naming it
    text = "".join(l + "\n" for l in CHECK_CFG.format(port=port, tmp=tmp_path, store=redis.url,
                                                      key=key).splitlines()
                   if not l.startswith("store_key_file"))
    cfg.write_text(text)
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 2 and re.search(re.escape(str(cfg)) + r":\d+:\d+: .*store_key_file", p.stderr), p.stderr
    # embedded (the default) needs none, as before
    cfg.write_text(text.replace(f"store: {redis.url}", "store: embedded"))
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr


# --------------------------------------------------------------------------------------------
# shared secret and keys; rotation

def test_automatic_rotation_is_made_by_one_node(cluster):
    """Three nodes see the same rotation fall due at the same moment: one of them makes the key
    (the claim on latch:keygen), the others take it; the cluster never fills with one key per
    node and rotation. A rotation period of 6 s stands in for six weeks (the claim is held for
    half of it: 3 s for the winner's key to reach the others, however busy the machine)."""
    keys = {"rotation": "6s", "overlap": "1h"}
    nodes = [cluster.node(n, addr, keys=keys) for n, addr in (("a", A), ("b", B), ("c", C))]
    first = nodes[0].kids()
    assert len(first) == 1 and all(n.kids() == first for n in nodes), [n.kids() for n in nodes]
    # two rotations (due at about 6 s and 12 s after the first key)
    assert deadline_poll(lambda: len(nodes[0].kids()) >= 3, 25, 0.1), nodes[0].kids()
    time.sleep(1.0)  # time for a duplicate, had one been made, to reach every node
    kids = [n.kids() for n in nodes]
    assert kids[0] == kids[1] == kids[2] and len(kids[0]) == 3, kids
    signers = {n.signer() for n in nodes}
    assert len(signers) == 1 and signers <= kids[0], signers
    t = issue(nodes[1], "bob@example.com")
    assert all(n.with_token(t).status == 200 for n in nodes)
    # each rotation is in the auth log of the node that made it (SPEC.md §9), once
    made = [json.loads(line)["reason"] for n in nodes if n.auth_log.exists()
            for line in n.auth_log.read_text().splitlines() if '"key_rotation"' in line]
    assert len(made) == len(set(made)) >= 2 and set(made) < kids[0], (made, kids[0])


def test_nodes_share_aud_and_keys_rotation_on_a_reaches_b(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    # the state_dir secret is shared: the same AUD for each app on both nodes
    assert a.aud("api") == b.aud("api") and a.aud("api2") == b.aud("api2")
    assert a.aud("api") != a.aud("api2")
    # one signing key for the cluster, not one per node
    kid1 = a.signer()
    assert b.signer() == kid1 and a.kids() == b.kids() == {kid1}, (a.certs(), b.certs())
    t1 = issue(a, "bob@example.com")
    assert jwt_claims(t1)["iss"] == cluster.auth
    assert b.with_token(t1).status == 200
    assert a.with_token(issue(b, "amy@example.com")).status == 200

    next_second()
    p = admin(a, "keys", "rotate")
    m = re.search(r"new signing key ([0-9a-f]+)", p.stdout)
    assert m, p.stdout
    kid2 = m.group(1)
    assert kid2 != kid1
    listed = deadline_poll(lambda: kid2 in b.kids(), 1.5)
    assert listed, f"B's certs do not list {kid2} ~1 s after the rotation on A: {b.kids()}"
    assert {kid1, kid2} <= b.kids()
    t2 = issue(a, "bob@example.com")
    assert jwt.get_unverified_header(t2)["kid"] == kid2
    r = b.with_token(t2)
    assert r.status == 200 and r.json()["headers"]["cf-access-authenticated-user-email"] == "bob@example.com", r
    ak.verify_with_jwks(b, t2, b.aud("api"))     # an independent library, B's JWKS
    assert b.with_token(t1).status == 200        # the previous key still verifies (overlap)
    # B signs with a key A knows
    assert a.with_token(issue(b, "amy@example.com")).status == 200

    # private keys never sit in Redis in the clear
    for k, v in redis_values(cluster.redis).items():
        assert not PRIVATE_KEY_RE.search(v), (k, v[:300])


# --------------------------------------------------------------------------------------------
# revocation

def test_revocation_on_a_refuses_on_b_within_1s(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    bob, alice = issue(a, "bob@example.com"), issue(a, "alice@example.com")
    bob2 = issue(b, "bob@example.com", app="api2")
    for t, app in ((bob, "api"), (alice, "api"), (bob2, "api2")):
        assert b.with_token(t, app).status == 200     # verified and cached on B
        assert a.with_token(t, app).status == 200
    p = admin(a, "revoke", "--email", "bob@example.com", check=False)
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    refused = deadline_poll(lambda: b.with_token(bob).status == 401, 1.0)
    took = time.monotonic() - t0
    assert refused, "B still admits a token revoked on A 1 s after `latchd revoke` returned"
    r = b.with_token(bob)
    assert r.status == 401 and r.json().get("token_error") == "revoked", r
    assert b.with_token(bob2, "api2").status == 401
    assert refused_everywhere([a], bob), "A (where the revocation was made) still admits the token"
    assert b.with_token(alice).status == 200 and a.with_token(alice).status == 200
    # a node started afterwards, with an empty state_dir, learns it from Redis
    c = cluster.node("c", C)
    assert c.with_token(bob).status == 401 and c.with_token(alice).status == 200
    next_second()
    assert b.with_token(issue(a, "bob@example.com")).status == 200   # issued after: admitted
    print(f"revocation reached B in {took:.3f} s")


# --------------------------------------------------------------------------------------------
# service tokens

def test_service_token_created_on_a_admits_on_b_and_c(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    # NAME is under no `service_tokens:`: the policy names it, Redis knows it
    p = admin(a, "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    cid, secret = service_token(a, "deploy")
    other_cid, other_secret = service_token(a, "other")
    c = cluster.node("c", C)
    assert admitted_everywhere([a, b, c], "ci", st_headers(cid, secret)), "deploy not admitted everywhere"
    assert admitted_everywhere([a, b, c], "robots", st_headers(other_cid, other_secret)), \
        "other not admitted everywhere"
    for n in (a, b, c):
        r = n.req("/job", "ci", st_headers(cid, secret))
        assert r.status == 200, (n.name, r)
        h = r.json()["headers"]
        assert jwt_claims(h["cf-access-jwt-assertion"])["common_name"] == cid
        assert not any(k.startswith("cf-access-client") for k in h)
        assert n.req("/", "robots", st_headers(other_cid, other_secret)).status == 200, n.name
        # refused: a wrong secret, another token's secret, a token not named by the policy
        for hdrs in (st_headers(cid, secret[:-1] + ("0" if secret[-1] != "0" else "1")),
                     st_headers(cid, other_secret), st_headers(other_cid, other_secret)):
            r = n.req("/", "ci", hdrs)
            assert r.status in (401, 403), (n.name, hdrs[0], r)
        assert n.req("/", "ci", st_headers("0" * 32 + ".access", secret)).status == 401
    e = b.wait_log(lambda e: e.get("path") == "/job" and e.get("status") == 200)
    assert e["decision"] == "service_auth" and e["service_token"] == "deploy", e
    # the secret is stored nowhere: not in Redis, not in any node's files
    for k, v in redis_values(cluster.redis).items():
        assert secret.encode() not in v and other_secret.encode() not in v, k
    for n in (a, b, c):
        for f in n.tmp.rglob("*"):
            if f.is_file() and not f.is_socket():
                assert secret.encode() not in f.read_bytes(), f


# --------------------------------------------------------------------------------------------
# login state and grants across nodes

def test_otp_sent_on_a_entered_on_b_grants_cross_nodes(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    email = "dora@example.com"
    cl = Client(addr=A)
    csrf = otp_form(cl, cluster, "api", "/here?q=1")
    code = otp_send(cl, cluster, a, csrf, email)
    assert b.pins(email) == [], "the PIN was to be sent by A only"
    before_code = dict(cl.jar)     # the flow cookie, before the code was used
    # a wrong code on B counts against the same flow; the right one on B then succeeds
    cl.addr = B
    wrong = "00000000" if code != "00000000" else "11111111"
    r = cl.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": wrong})
    assert r.status == 400 and "not right" in r.text, r
    r = cl.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
    grant_url = r.location
    assert grant_url.startswith(cluster.url("api", "/cdn-cgi/access/authorized?grant=")), grant_url
    # the grant B made is redeemed on A, once
    cl.addr = A
    r = cl.get(grant_url)
    assert r.status == 302 and r.location == "/here?q=1", r
    assert cl.get_cookie("api.localhost", "CF_Authorization"), r.headers
    r = cl.get(cluster.url("api", "/here?q=1"))
    assert r.status == 200 and r.json()["headers"]["cf-access-authenticated-user-email"] == email, r
    for addr in (B, A):
        replay = Client(addr=addr)
        r = replay.get(grant_url)
        assert r.status == 400 and not r.header("set-cookie"), (addr, r)
    # the PIN is spent on every node: the same flow cookie and code again, on A and on B
    for addr in (A, B):
        replay = Client(addr=addr)
        replay.jar = dict(before_code)
        r = replay.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
        assert r.status != 302 and "grant=" not in (r.location or ""), (addr, r)
    # single sign-on: the org session made on B is known on A; A's grant redeemed on B
    cl.addr = A
    r = cl.get(cluster.url("api2", "/two"))
    assert r.status == 302 and "/cdn-cgi/access/login/" in r.location, r
    r = cl.get(r.location)
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
    cl.addr = B
    r2 = cl.get(r.location)
    assert r2.status == 302 and r2.location == "/two" and "CF_Authorization=" in r2.header("set-cookie"), r2
    r3 = cl.get(cluster.url("api2", "/two"))
    assert r3.status == 200 and r3.json()["headers"]["cf-access-authenticated-user-email"] == email
    cl.addr = A
    assert cl.get(r.location).status == 400       # spent on B
    a.wait_log(lambda x: x.get("path") == "/cdn-cgi/access/otp" and x.get("method") == "POST")
    b.wait_log(lambda x: x.get("path") == "/cdn-cgi/access/otp" and x.get("method") == "POST")


def test_oidc_started_on_a_callback_on_b(cluster, idp_factory):
    idp = idp_factory(cluster.port)
    cluster.idps.append(idp.idp_config("corp"))
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    cl = Client(addr=A)
    cb, chain = oidc_login(cl, cluster.url("api", "/docs?x=1"), "alice", stop_at_callback=True)
    assert any("/cdn-cgi/access/start" in x.url or "/cdn-cgi/access/login/" in x.url for x in chain)
    # the state, nonce and PKCE verifier A made are found by B
    cl.addr = B
    r = cl.get(cb)
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, (r, r.text[:500])
    r, chain = cl.follow(r.location)
    assert r.status == 200 and r.url == cluster.url("api", "/docs?x=1"), (r, [x.url for x in chain])
    e = r.json()
    assert e["headers"]["cf-access-authenticated-user-email"] == "alice@example.com"
    c = jwt_claims(e["headers"]["cf-access-jwt-assertion"])
    assert c["idp"] == "corp" and c["groups"] == ["engineering", "staff"], c
    assert len(idp.requests("/token")) == 1
    # the callback is single-use on every node
    for addr in (A, B):
        replay = Client(addr=addr)
        replay.jar = dict(cl.jar)
        r = replay.get(cb)
        assert r.status >= 400 and "authorized?grant=" not in (r.location or ""), (addr, r)
    # the identity behind the nonce is served by A too
    cl.addr = A
    r = cl.get(cluster.url("api", "/cdn-cgi/access/get-identity"), accept="application/json")
    assert r.status == 200 and r.json()["email"] == "alice@example.com", r


# --------------------------------------------------------------------------------------------
# the CLI handoff across nodes

def cross_node_cli(cli_factory, browser_node):
    c = cli_factory(browser_node)
    c.extra_env["LATCH_TEST_HOST_RULES"] = TO_A
    return c


def transfers(n):
    return n.entries(lambda e: (e.get("path") or "").startswith("/cdn-cgi/access/transfer/"))


@needs_browser
@pytest.mark.timeout(120)
def test_handoff_browser_on_a_cli_on_b_one_poll(cluster, cli_factory):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    c = cross_node_cli(cli_factory, a)   # the PIN is read from A's stderr only
    p = c.run("--timeout", "60", "curl", "-sS", cluster.url("api", "/x?y=1"), timeout=90)
    code, shown = printed(p.stderr)
    assert p.returncode == 0, (p.returncode, p.stderr, c.records())
    rec = c.records(1)[-1]
    assert rec["ok"] and rec["code"] == code, rec
    e = json.loads(p.stdout)
    assert e["path"] == "/x" and e["query"] == "y=1", e
    assert e["headers"]["cf-access-authenticated-user-email"] == EMAIL
    # the browser's half happened on A, the CLI's on B
    a.wait_log(lambda x: x.get("path") == "/cdn-cgi/access/cli" and x.get("method") == "POST")
    assert a.pins(EMAIL) and not b.pins(EMAIL)
    assert not b.entries(lambda x: x.get("path") in ("/cdn-cgi/access/cli", "/cdn-cgi/access/otp"))
    b.wait_log(lambda x: (x.get("path") or "").startswith("/cdn-cgi/access/transfer/")
               and x.get("status") == 200, timeout=5)
    tb = [t for t in transfers(b) if t.get("status") != 401]  # the first poll asks for a challenge
    assert len(tb) == 1, f"B served {len(tb)} transfer requests for one handoff (pub/sub wake-up?): {tb}"
    assert transfers(a) == []
    b.wait_log(lambda x: x.get("path") == "/x" and x.get("status") == 200)
    # the token works on both nodes
    tok = c.stored(f"api.localhost:{cluster.port}")["app_token"]
    assert a.with_token(tok).status == 200 and b.with_token(tok).status == 200
    # and the org token from A's box gets the second app through B, with no browser
    p = c.run("curl", "-sS", cluster.url("api2", "/two"), browser="forbidden")
    assert p.returncode == 0 and json.loads(p.stdout)["path"] == "/two", (p.stdout, p.stderr)
    assert c.forbidden_browser_calls() == []


@needs_browser
@pytest.mark.timeout(90)
def test_node_killed_after_sealing_other_node_delivers(cluster, cli_factory):
    """The browser confirms on A; A is SIGKILLed; only then does anybody poll, on B."""
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    na = Sodium()
    pk, sk = na.keypair()
    key = b64u(pk)
    c = cross_node_cli(cli_factory, a)
    url = f"{cluster.auth}/cdn-cgi/access/cli?host=api.localhost:{cluster.port}&key={key}&n=AAAAAAAAAAAAAAAAAAAAAA"
    rc, rec = c.browse(url)
    assert rc == 0 and rec["ok"], rec
    a.wait_log(lambda x: x.get("path") == "/cdn-cgi/access/cli" and x.get("method") == "POST")
    cluster.kill(a)
    # B hands out the proof's challenge (the proof's key is the cluster's shared secret)
    r = b.req(f"/cdn-cgi/access/transfer/{key}", "auth", headers=[("Accept", "application/json")], timeout=10)
    assert r.status == 401, r
    proof = na.open(base64.urlsafe_b64decode(r.json()["challenge"] + "=="), pk, sk).decode()
    auth = ("Authorization", f"Latch-Proof {proof}")
    try:
        r = b.req(f"/cdn-cgi/access/transfer/{key}", "auth", headers=[("Accept", "application/json"), auth],
                  timeout=10)
    except socket.timeout:
        raise AssertionError("B holds the poll: the box A sealed before it died is not in Redis") from None
    assert r.status == 200, r
    plain = na.open(r.body, pk, sk)
    assert plain, "the box B delivered does not open with the CLI's key"
    box = json.loads(plain)
    assert jwt_claims(box["app_token"])["aud"] == [b.aud("api")]
    assert b.with_token(box["app_token"]).status == 200
    # the org token it carried exchanges for another app on B (identity looked up in Redis)
    r = b.req("/cdn-cgi/access/token", "auth", method="POST", body=f"host=api2.localhost:{cluster.port}",
              headers=[("cf-access-token", box["org_token"]), ("Accept", "application/json"),
                       ("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 200, r
    assert b.with_token(r.json()["app_token"], "api2").status == 200
    # one read only: B does not hand the box out again (it may hold the poll: nothing to give)
    with RawConn(b.port, host=b.addr, timeout=3) as conn:
        conn.send(f"GET /cdn-cgi/access/transfer/{key} HTTP/1.1\r\nHost: auth.localhost:{cluster.port}\r\n"
                  f"Accept: application/json\r\n{auth[0]}: {auth[1]}\r\nConnection: close\r\n\r\n")
        try:
            again = conn.read_response()
            assert again.status != 200, again
        except socket.timeout:
            pass


@pytest.mark.timeout(90)
def test_handoff_claim_and_confirmation_are_first_come_across_nodes(cluster):
    """The claim of a handoff link and its confirmation are add-if-absent operations in Redis
    (SET NX): a second browser on another node is refused, and so is a second confirmation."""
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    host = f"api.localhost:{cluster.port}"
    na = Sodium()
    pk, sk = na.keypair()
    link = f"{cluster.auth}/cdn-cgi/access/cli?host={host}&key={b64u(pk)}&n=AAAAAAAAAAAAAAAAAAAAAA"
    victim, mallory = Client(addr=A), Client(addr=B)
    csrf = otp_form(victim, cluster)
    pin = otp_send(victim, cluster, a, csrf, EMAIL)
    r = victim.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": pin})
    assert r.status == 302, r
    page, chain = victim.follow(link)                         # claimed on A
    assert chain[0].status == 302 and "req=" in chain[0].location and page.status == 200, chain
    r, _ = mallory.follow(link)                               # seen on B, through Redis
    assert r.status == 403 and "already opened in another browser" in r.text, r
    fields = form_fields(page.text)
    post = f"{cluster.auth}/cdn-cgi/access/cli"
    victim.addr = B                                           # the confirmation lands on B
    r = victim.post(post, fields, headers=[("Origin", cluster.auth)])
    assert r.status == 200 and "You are signed in" in r.text, r
    victim.addr = A                                           # and once more, on A
    r = victim.post(post, fields, headers=[("Origin", cluster.auth)])
    assert r.status == 409 and "already confirmed" in r.text, r


# --------------------------------------------------------------------------------------------
# a node killed while it holds the CLI's poll, behind a real HAProxy

class Haproxy:
    def __init__(self, tmp, port, poll_primary, other):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.sock = self.tmp / "haproxy.sock"
        cfg = f"""global
    maxconn 256
    stats socket {self.sock} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:{port}
    use_backend poll if {{ path_beg /cdn-cgi/access/transfer/ }}
    default_backend nodes
backend poll
    server b {poll_primary}:{port} check inter 100ms fall 1 rise 1
    server a {other}:{port} check inter 100ms backup
backend nodes
    server a {other}:{port} check inter 100ms
"""
        (self.tmp / "haproxy.cfg").write_text(cfg)
        self.err = open(self.tmp / "haproxy.log", "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.tmp / "haproxy.cfg")],
                                     stdout=self.err, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(port, 10, self.proc)
        up = deadline_poll(lambda: self.proc.poll() is None and self.sock.exists(), 5)
        assert up, f"haproxy is not running:\n{(self.tmp / 'haproxy.log').read_text()}"

    def stat(self):
        """{(proxy, server): current sessions} from the stats socket."""
        return {(r["pxname"], r["svname"]): int(r["scur"] or 0)
                for r in haproxy_show_stat(self.sock, timeout=3)}

    def stop(self):
        stop_pid(self.proc, signal.SIGTERM, 5)
        self.err.close()


@needs_browser
@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
@pytest.mark.timeout(120)
def test_node_holding_the_poll_killed_cli_retry_finishes_on_other(cluster, cli_factory):
    a = cluster.node("a", A)
    b = cluster.node("b", C)    # the CLI's node, behind HAProxy on 127.0.0.1:P
    hp = Haproxy(cluster.tmp / "haproxy", cluster.port, poll_primary=C, other=A)
    p = None
    try:
        c = cross_node_cli(cli_factory, a)
        p = c.popen("--no-browser", "--timeout", "60", "curl", "-sS", cluster.url("api", "/killed"),
                    browser="forbidden")
        err = ""
        end = time.monotonic() + 20
        while time.monotonic() < end and "/cdn-cgi/access/cli?" not in err:
            line = p.stderr.readline()
            if not line:
                break
            err += line
        code, shown = printed(err)
        assert code and shown, err
        # B holds the poll
        held = deadline_poll(lambda: hp.stat().get(("poll", "b"), 0) >= 1, 10, 0.05)
        assert held, hp.stat()
        # B freezes before it can hand anything out, the browser confirms on A, B dies
        b.signal(signal.SIGSTOP)
        rc, rec = c.browse(shown, expect_code=code)
        assert rc == 0 and rec["ok"], rec
        cluster.kill(b)
        out, rest = p.communicate(timeout=40)
        assert p.returncode == 0, (p.returncode, err + rest)
        e = json.loads(out)
        assert e["path"] == "/killed" and e["headers"]["cf-access-authenticated-user-email"] == EMAIL
        a.wait_log(lambda x: (x.get("path") or "").startswith("/cdn-cgi/access/transfer/")
                   and x.get("status") == 200)
        assert c.forbidden_browser_calls() == []
    finally:
        if p is not None and p.poll() is None:
            stop_pid(p, signal.SIGTERM, 5)
        hp.stop()


# --------------------------------------------------------------------------------------------
# Redis down, Redis back

def outage_checks(n, cluster, flow_cookie_client, csrf, tokens, accept_json):
    """What one node must do while Redis is down."""
    bob, carol, (cid, secret) = tokens
    acc = ("Accept", "application/json") if accept_json else ("Accept", "text/html")
    # verification is local
    assert n.with_token(bob).status == 200, n.name
    r = n.with_token(carol)
    assert r.status == 401, (n.name, r)
    assert n.req("/", "ci", st_headers(cid, secret), timeout=ANSWER_S).status == 200, n.name
    assert n.req("/cdn-cgi/access/certs", "auth", timeout=ANSWER_S).status == 200
    # unauthenticated: the usual answers, which need no shared state
    r = n.req("/", "api", [("Accept", "application/json")], timeout=ANSWER_S)
    assert r.status == 401 and r.json()["error"] == "login_required", r
    # a CLI's poll: its proof's challenge needs no shared state (a MAC under the cluster's
    # secret), the box does
    na = Sodium()
    pk, sk = na.keypair()
    transfer = "/cdn-cgi/access/transfer/" + b64u(pk)
    r = n.req(transfer, "auth", [("Accept", "application/json")], timeout=ANSWER_S)
    assert r.status == 401, (n.name, r)
    proof = na.open(base64.urlsafe_b64decode(r.json()["challenge"] + "=="), pk, sk).decode()
    # shared state: 503 at once, JSON for scripts, a page for browsers
    reqs = [
        ("GET", f"/cdn-cgi/access/login/api.localhost:{cluster.port}?redirect_url=%2F", "auth", None, True, []),
        ("GET", transfer, "auth", None, False, [("Authorization", f"Latch-Proof {proof}")]),
        ("GET", "/cdn-cgi/access/authorized?grant=" + os.urandom(16).hex(), "api", None, True, []),
    ]
    for method, path, host, body, browsers_too, extra in reqs:
        accepts = [("Accept", "application/json")] + ([("Accept", "text/html")] if browsers_too else [])
        for a in accepts:
            try:
                r = n.req(path, host, [a, *extra], method=method, body=body, timeout=ANSWER_S)
            except socket.timeout:
                raise AssertionError(f"node {n.name}: {method} {path} ({a[1]}) did not answer "
                                     f"within {ANSWER_S}s with Redis down") from None
            if a[1] == "application/json":
                assert is_json_503(r), (n.name, path, r)
            else:
                assert r.status == 503 and "text/html" in (r.header("content-type") or ""), (n.name, path, r)
                assert re.search(rb"try again|unavailable", r.body, re.I), r.body[:300]
    # a flow started before the outage: sending the PIN needs the store
    cl = flow_cookie_client
    cl.addr = n.addr
    t0 = time.monotonic()
    r = cl.request("POST", f"{cluster.auth}/cdn-cgi/access/otp",
                   body={"csrf": csrf, "email": "late@example.com"}, accept=acc[1])
    assert time.monotonic() - t0 < ANSWER_S * 2, "the PIN form hung with Redis down"
    if accept_json:
        assert is_json_503(Resp2(r)), (n.name, r)
    else:
        assert r.status == 503, (n.name, r)
    assert not n.pins("late@example.com")


class Resp2:
    """browser.Resp as a harness.Response-like for is_json_503."""

    def __init__(self, r):
        self.status, self.body = r.status, r.body

    def json(self):
        return json.loads(self.body)


@needs_browser
@pytest.mark.timeout(150)
def test_redis_outage_then_recovery_without_restart(cluster, cli_factory):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    bob = issue(a, "bob@example.com")
    carol_tok = issue(a, "carol@example.com", app="api2")
    carol = issue(b, "carol@example.com")
    cid, secret = service_token(a, "deploy")
    kid = a.signer()
    admin(a, "revoke", "--email", "carol@example.com")
    assert refused_everywhere([a, b], carol)
    assert admitted_everywhere([a, b], "ci", st_headers(cid, secret))
    assert b.with_token(bob).status == 200
    flows = {}
    for n in (a, b):
        cl = Client(addr=n.addr)
        flows[n.name] = (cl, otp_form(cl, cluster))
    # what lives in Redis for good (no TTL): the secret, keys, revocations, service tokens
    lasting = sorted(k for k in cluster.redis.keys() if cluster.redis.cmd("TTL", k) == -1)
    print("lasting keys:", [k.decode(errors="replace") for k in lasting])
    assert lasting, "nothing lasting in Redis"

    cluster.redis.stop()
    for n, accept_json in ((a, True), (b, False)):
        cl, csrf = flows[n.name]
        outage_checks(n, cluster, cl, csrf, (bob, carol, (cid, secret)), accept_json)
    assert a.alive() and b.alive()

    # Redis back on the same port, empty
    cluster.redis.start()

    def logins_work():
        for n in (a, b):
            r, _ = Client(addr=n.addr).follow(cluster.url("api", "/"))
            if r.status != 200 or "Sign in with your email" not in r.text:
                return False
        return True
    assert deadline_poll(logins_work, 10, 0.2), "logins still refused 10 s after Redis came back"
    back = deadline_poll(lambda: all(cluster.redis.cmd("EXISTS", k) for k in lasting), 10, 0.1)
    missing = [k for k in lasting if not cluster.redis.cmd("EXISTS", k)]
    assert back, f"the nodes did not push these back into the empty Redis within 10 s: {missing}"

    # a new login: PIN sent by A, entered on B, grant redeemed on A
    cl = Client(addr=A)
    csrf = otp_form(cl, cluster, "api", "/back")
    code = otp_send(cl, cluster, a, csrf, "eve@example.com")
    cl.addr = B
    r = cl.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and "authorized?grant=" in r.location, r
    cl.addr = A
    r, _ = cl.follow(r.location)
    assert r.status == 200 and r.json()["headers"]["cf-access-authenticated-user-email"] == "eve@example.com"

    # what was made before the outage is back in Redis: a node that never saw it knows it
    c = cluster.node("c", C)
    assert deadline_poll(lambda: c.with_token(carol).status == 401, 5), \
        "a revocation made before the outage is lost after Redis came back empty"
    assert c.with_token(carol_tok, "api2").status == 401
    assert c.with_token(bob).status == 200, "the signing key made before the outage is lost"
    assert kid in c.kids(), c.kids()
    assert c.req("/", "ci", st_headers(cid, secret)).status == 200, \
        "a service token made before the outage is lost"
    for n in (a, b):
        assert n.with_token(carol).status == 401 and n.with_token(bob).status == 200
        assert n.req("/", "ci", st_headers(cid, secret)).status == 200
    assert a.with_token(issue(c, "fay@example.com")).status == 200

    # and a new handoff across nodes
    cli = cross_node_cli(cli_factory, a)
    p = cli.run("--timeout", "60", "curl", "-sS", cluster.url("api", "/after"), timeout=90)
    assert p.returncode == 0, (p.returncode, p.stderr, cli.records())
    assert json.loads(p.stdout)["path"] == "/after"


# --------------------------------------------------------------------------------------------
# a node with another store key

def wait_started_or_exited(n, timeout=15):
    """Starts n without waiting; returns True once it listens, False once it exited."""
    n.start(wait=False)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not n.alive():
            n.proc.wait(5)
            n.stopped_by_test = True
            return False
        try:
            with socket.create_connection((n.addr, n.port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"node {n.name} neither listens nor exits after {timeout}s:\n{n.stderr()}")


def test_node_with_another_store_key_refuses_to_start(cluster):
    """Observed contract (README "Several nodes"): a node whose store_key_file is not the
    cluster's cannot open the cluster's secret and refuses to start, loudly; nothing it did
    touches the cluster's sealed keys."""
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    kid = a.signer()
    t = issue(a, "bob@example.com")
    before = redis_values(cluster.redis)
    x = cluster.node("x", C, start=False, key_file=write_store_key(cluster.tmp / "other.key"))
    started = wait_started_or_exited(x)
    err = x.stderr()
    assert not started, f"a node with another store key runs (signer {x.signer()}):\n{err}"
    assert x.proc.returncode > 0, f"node x ended with {x.proc.returncode} (a signal?)\n{err}"
    said = [l for l in err.splitlines() if "store_key_file" in l]
    assert said, err
    print("observed:", said)
    # the cluster's keys are untouched: same signer, and a new node with the right key reads them
    assert {k: v for k, v in redis_values(cluster.redis).items() if not k.startswith(b"latch:flow:")} == \
        {k: v for k, v in before.items() if not k.startswith(b"latch:flow:")}
    assert a.signer() == kid and b.signer() == kid
    assert b.with_token(issue(a, "bob@example.com")).status == 200
    d = cluster.node("d", D)
    assert d.signer() == kid and d.with_token(t).status == 200
    assert a.with_token(issue(d, "dan@example.com")).status == 200


def test_offline_token_issue_with_another_store_key_refuses(cluster):
    """`latchd token issue` for a node whose latchd is not running works offline. With the wrong
    store key it cannot read the cluster's keys: it must refuse (saying why), never print a token
    signed by a key of its own that no node knows."""
    a = cluster.node("a", A)
    x = cluster.node("x", C, start=False, key_file=write_store_key(cluster.tmp / "other.key"))
    p = ak.cli(x, "token", "issue", "--app", "api", "--email", "xavier@example.com")
    if p.returncode == 0:
        tok = p.stdout.strip()
        r = a.with_token(tok)
        assert r.status == 200, (
            f"`latchd token issue` with another store key exited 0 and printed a token the cluster "
            f"refuses ({r.status} {r.body[:120]!r}); kid {jwt.get_unverified_header(tok)['kid']} "
            f"(cluster: {sorted(a.kids())}); stderr: {p.stderr!r}")
    else:
        assert "store_key_file" in p.stderr or "store key" in p.stderr, p.stderr


def test_offline_token_issue_on_a_new_node_uses_the_cluster_keys(cluster):
    """The same on a node that never ran but has the right store key: Redis has the cluster's
    secret and keys, so the token is one every node admits (README: a node that never had a
    copy must not sign "with a key nobody else knows")."""
    a = cluster.node("a", A)
    y = cluster.node("y", C, start=False)
    p = ak.cli(y, "token", "issue", "--app", "api", "--email", "yves@example.com")
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    r = a.with_token(tok)
    assert r.status == 200, (
        f"offline `latchd token issue` on a node that never ran printed a token the cluster refuses "
        f"({r.status} {r.body[:120]!r}): kid {jwt.get_unverified_header(tok)['kid']} "
        f"(cluster: {sorted(a.kids())}), aud {jwt_claims(tok)['aud']} (cluster: {a.aud()})")


# --------------------------------------------------------------------------------------------
# Redis is not trusted: values moved or planted there are ignored

def test_values_moved_or_planted_in_redis_are_ignored(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    r = cluster.redis
    alice = issue(a, "alice@example.com")
    zed = issue(a, "zed@example.com")
    cid, secret = service_token(a, "deploy")
    kid = a.signer()
    assert b.req("/", "ops", st_headers(cid, secret)).status in (401, 403)
    keys = set(r.keys())
    assert {b"latch:svc", b"latch:keys"} <= keys, keys
    # deploy's sealed record under the name ops-bot; the signing key under another kid; a
    # revocation of alice written in the clear
    r.cmd("HSET", "latch:svc", "ops-bot", r.cmd("HGET", "latch:svc", "deploy"))
    r.cmd("HSET", "latch:keys", "0" * 32, r.cmd("HGET", "latch:keys", kid))
    r.cmd("HSET", "latch:rev", "e:alice@example.com", str(int(time.time()) + 3600))
    # legitimate changes on A make every node merge what Redis holds
    admin(a, "revoke", "--email", "zed@example.com")
    third = service_token(a, "third")
    assert refused_everywhere([a, b], zed)
    assert admitted_everywhere([a, b], "robots", st_headers(*third))
    c = cluster.node("c", C)      # and a node that knows only what Redis holds
    problems = []
    for n in (a, b, c):
        rr = n.req("/", "ops", st_headers(cid, secret))
        if rr.status not in (401, 403):
            problems.append(f"{n.name}: deploy's credentials pass as ops-bot: {rr}")
        rr = n.with_token(alice)
        if rr.status != 200:
            problems.append(f"{n.name}: a revocation written in the clear into latch:rev took effect "
                            f"({rr.status} {rr.json().get('token_error')})")
        if "0" * 32 in n.kids():
            problems.append(f"{n.name} serves a key planted under another kid")
        assert n.with_token(zed).status == 401
    assert c.req("/", "ci", st_headers(cid, secret)).status == 200
    revs = (a.tmp / "state" / "revocations.json")
    if revs.exists() and "alice@example.com" in revs.read_text():
        problems.append(f"node a wrote the planted revocation into its state_dir: {revs.read_text()}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# a node starting while Redis is down

def test_node_start_while_redis_is_down(cluster):
    """README: a node that starts while Redis is unreachable starts on its own copy if it has one,
    and refuses to start if it never had one."""
    a = cluster.node("a", A)
    t = issue(a, "bob@example.com")
    kid = a.signer()
    assert a.stop() == 0
    cluster.redis.stop()
    fresh = cluster.node("fresh", C, start=False)
    assert not wait_started_or_exited(fresh), "a node with no copy started with Redis down"
    assert fresh.proc.returncode > 0 and fresh.stderr().strip(), (fresh.proc.returncode, fresh.stderr())
    a2 = cluster.node("a2", A, start=False, state_dir=str(a.tmp / "state"))
    assert wait_started_or_exited(a2), f"a node with its copy refused to start:\n{a2.stderr()}"
    assert a2.signer() == kid and a2.with_token(t).status == 200
    assert is_json_503(a2.req(f"/cdn-cgi/access/login/api.localhost:{cluster.port}?redirect_url=%2F",
                              "auth", [("Accept", "application/json")], timeout=ANSWER_S))
    cluster.redis.start()
    assert deadline_poll(lambda: cluster.redis.cmd("EXISTS", "latch:keys"), 10, 0.1), \
        "the node did not refill the empty Redis"
    late = cluster.node("late", D)
    assert late.signer() == kid and late.with_token(t).status == 200


def test_redis_with_a_password(cluster, tmp_path):
    """docs/config-extras.md: store_password_file is sent as AUTH; a node without it cannot use
    a Redis that requires one (and, with no copy of its own, refuses to start)."""
    cluster.redis.cmd("CONFIG", "SET", "requirepass", "s3cret-redis-pass")
    pw = tmp_path / "redis.pass"
    pw.write_text("s3cret-redis-pass\n")
    a = cluster.node("a", A, store_password_file=str(pw))
    b = cluster.node("b", B, store_password_file=str(pw))
    assert a.signer() == b.signer()                      # one key, through the shared store
    assert b.with_token(issue(a, "bob@example.com")).status == 200
    r = b.req(f"/cdn-cgi/access/login/api.localhost:{cluster.port}?redirect_url=%2F", "auth",
              [("Accept", "application/json")], timeout=ANSWER_S)
    assert r.status == 302, r                           # a login flow stored in Redis
    nopass = cluster.node("nopass", C, start=False)
    assert not wait_started_or_exited(nopass), "a node without the password started"
    assert "store_password_file" in nopass.stderr() or "NOAUTH" in nopass.stderr() or \
        "cannot be reached" in nopass.stderr(), nopass.stderr()
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-it\n")
    bad = cluster.node("bad", D, start=False, store_password_file=str(wrong))
    assert not wait_started_or_exited(bad), "a node with a wrong password started"
    assert "refused the password of store_password_file" in bad.stderr(), bad.stderr()
    # latchd check names a missing password file
    cfg = tmp_path / "check.yaml"
    cfg.write_text(yaml.safe_dump({**cluster.config(), "listen": [{"address": "127.0.0.1:1"}],
                                   "state_dir": str(tmp_path / "s"),
                                   "store_password_file": str(tmp_path / "missing")}))
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2 and re.search(re.escape(str(cfg)) + r":\d+:\d+: 'store_password_file': "
                                           r"cannot read", p.stdout + p.stderr), p.stdout + p.stderr


# --------------------------------------------------------------------------------------------
# garbage in Redis

GARBAGE = [b"\xff\xfe\x00\x01garbage", b"", b'{"kid":1,"pem":[],"exp":"x","email":{}}',
           b"-ERR\r\n*1\r\n$-5\r\n", b"A" * (1 << 20), b"null", b"[[[[[[[[[[[[[[[[[[[[[["]


def test_garbage_in_redis_never_crashes_a_node(cluster):
    a = cluster.node("a", A)
    b = cluster.node("b", B)
    bob = issue(a, "bob@example.com")
    carol = issue(a, "carol@example.com")
    cid, secret = service_token(a, "deploy")
    admin(a, "revoke", "--email", "carol@example.com")
    assert refused_everywhere([a, b], carol)
    assert admitted_everywhere([a, b], "ci", st_headers(cid, secret))
    cl = Client(addr=A)
    csrf = otp_form(cl, cluster)          # a login flow in flight
    keys = cluster.redis.keys()
    assert keys, "nothing in Redis: are the nodes using it?"
    print("keys in Redis:", [k.decode(errors="replace") for k in keys][:40])
    r = cluster.redis
    for i, k in enumerate(keys):
        t = r.type_of(k)
        r.cmd("DEL", k)
        if t == "string" and i % 3 == 2:
            r.cmd("RPUSH", k, GARBAGE[i % len(GARBAGE)] or b"x")     # the wrong type
        elif t == "string" and i % 3 == 1:
            r.cmd("HSET", k, "f", GARBAGE[i % len(GARBAGE)])
        else:
            r.cmd("SET", k, GARBAGE[i % len(GARBAGE)])
    channels = r.cmd("PUBSUB", "CHANNELS", "*")
    print("pub/sub channels:", channels)
    for ch in channels:
        for g in GARBAGE:
            r.cmd("PUBLISH", ch, g)

    def answers(n):
        out = []
        for path, host, hdrs in (
                ("/cdn-cgi/access/certs", "auth", []),
                ("/", "api", [("cf-access-token", bob)]),
                ("/", "api", [("cf-access-token", carol)]),
                ("/", "ci", st_headers(cid, secret)),
                (f"/cdn-cgi/access/login/api.localhost:{cluster.port}?redirect_url=%2F", "auth",
                 [("Accept", "text/html")]),
                ("/cdn-cgi/access/authorized?grant=" + os.urandom(16).hex(), "api", []),
                ("/cdn-cgi/access/get-identity", "api", [("cf-access-token", bob)])):
            try:
                out.append(n.req(path, host, hdrs, timeout=ANSWER_S).status)
            except socket.timeout:
                raise AssertionError(f"node {n.name}: {path} did not answer within {ANSWER_S}s "
                                     f"with garbage in Redis") from None
        return out

    for n in (a, b):
        st = answers(n)
        assert all(100 <= s < 600 for s in st), (n.name, st)
        assert st[0] == 200 and st[1] == 200, (n.name, st)   # keys in memory still verify
        assert st[2] == 401, f"garbage in Redis un-revoked a token on {n.name}: {st}"
    cl.addr = B
    r2 = cl.post(f"{cluster.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": "gil@example.com"})
    assert 100 <= r2.status < 600
    # a node started on top of the garbage: runs, or refuses cleanly; never dies of a signal
    c = cluster.node("c", C, start=False)
    c.start(wait=False)
    up = deadline_poll(lambda: not c.alive() or _listening(c), 15, 0.1)
    assert up
    if c.alive():
        assert answers(c)[0] == 200
    else:
        c.stopped_by_test = True
        assert c.proc.returncode > 0, f"node c died of signal {-c.proc.returncode}:\n{c.stderr()}"
        print(f"observed: a node refuses to start on garbage (exit {c.proc.returncode}):\n{c.stderr()[-600:]}")
    assert a.alive() and b.alive(), (a.stderr()[-2000:], b.stderr()[-2000:])
    for n in (a, b):
        assert n.req("/cdn-cgi/access/certs", "auth").status == 200


def _listening(n):
    try:
        with socket.create_connection((n.addr, n.port), timeout=0.5):
            return True
    except OSError:
        return False
