"""Short-lived SSH certificates against the real things: `POST /cdn-cgi/access/cert_sign` on an
app's host signs the caller's public key with the app's SSH user CA (`latchd ssh-ca` prints it);
the certificate is read back with the real `ssh-keygen -L` and used with the real `ssh` against a
real Debian sshd (sshkit.py) that trusts the CA. Refusals: no token, a person outside the
policy, a principal list that yields nothing, key types other than ssh-ed25519 and
ecdsa-sha2-nistp256, bad bodies, an app without `ssh:`; sshd itself refuses a certificate for
another login and an expired one."""

import json
import os
import re
import stat
import subprocess
import time

import pytest

import authkit as ak
from harness import get
from sshkit import SSH_KEYGEN, cert_info, keygen, run_ssh, sshd_factory  # noqa: F401

HOST = "ssh.localhost"


def P(name, decision, *include):
    return {"name": name, "decision": decision, "include": list(include)}


def ssh_app(ssh=None, host=HOST, name="shell", policies=None):
    a = {"name": name, "domains": [host], "origin": "echo",
         "policies": policies or [P("staff", "allow", {"email_domain": "example.com"})]}
    if ssh is not None:
        a["ssh"] = ssh
    return a


def sign(d, pub_line, token=None, headers=(), host=HOST, body=None, method="POST"):
    hdrs = list(headers)
    if token:
        hdrs.append(("cf-access-token", token))
    hdrs.append(("Content-Type", "application/json"))
    if body is None:
        body = json.dumps({"public_key": pub_line}).encode()
    return get(d.port, "/cdn-cgi/access/cert_sign", host=host, headers=hdrs, method=method,
               body=body)


def ca_line(d, app="shell"):
    p = ak.cli(d, "ssh-ca", "--app", app, check=True)
    line = p.stdout.strip()
    assert re.fullmatch(r"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ latch-ca:" + re.escape(app), line), line
    return line


def write_cert(key, cert_line):
    path = f"{key}-cert.pub"
    with open(path, "w") as f:
        f.write(cert_line + "\n")
    return path


def auth_events(d, event="ssh_cert"):
    out = []
    if d.auth_log.exists():
        for ln in d.auth_log.read_text().splitlines():
            try:
                e = json.loads(ln)
            except ValueError:
                continue
            if e.get("event") == event:
                out.append(e)
    return out


def wait_event(d, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in auth_events(d):
            if pred(e):
                return e
        time.sleep(0.05)
    raise AssertionError(f"no matching ssh_cert event in {d.auth_log.read_text()}")


def fingerprint(pub_path):
    out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(pub_path)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return out.split()[1]


def principals_of(info):
    """The names under "Principals:" in `ssh-keygen -L` output (indented deeper than it)."""
    lines = info.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip().startswith("Principals:"))
    depth = len(lines[i]) - len(lines[i].lstrip())
    names = []
    for ln in lines[i + 1:]:
        if len(ln) - len(ln.lstrip()) <= depth:
            break
        names.append(ln.strip())
    return names


PERSON_SSH = {"principals": ["{email_local}", "u-{email_local}"],
              "principals_by_group": {"sre": ["root"]},
              "principals_by_email": {"carol@example.com": ["root", "backup"]}}


def test_person_certificate_read_by_ssh_keygen_and_accepted_by_sshd(latchd, tmp_path, sshd_factory):
    d = latchd({"apps": [ssh_app(PERSON_SSH)]})
    ca = ca_line(d)
    key = keygen(tmp_path / "id_ed25519")
    pub = (tmp_path / "id_ed25519.pub").read_text().strip()
    tok = ak.issue(d, "shell", "alice@example.com", groups=["sre"])
    t0 = int(time.time())
    r = sign(d, pub, tok)
    assert r.status == 200, r
    j = r.json()
    assert set(j) == {"certificate", "expires_at"}
    assert j["certificate"].startswith("ssh-ed25519-cert-v01@openssh.com AAAA")
    assert t0 + 290 <= j["expires_at"] <= int(time.time()) + 300   # 5 minutes by default
    cert = write_cert(key, j["certificate"])
    info = cert_info(cert)
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in info
    assert 'Key ID: "alice@example.com"' in info
    assert principals_of(info) == ["alice", "u-alice", "root"]
    assert "Critical Options: (none)" in info
    ext = info[info.index("Extensions:"):].split()
    assert ext[1:] == ["permit-port-forwarding", "permit-pty"], info
    assert "Signing CA: ED25519 SHA256:" in info
    m = re.search(r"Valid: from (\S+) to (\S+)", info)
    assert m, info
    # signed by the CA latchd ssh-ca prints
    ca_pub = tmp_path / "ca.pub"
    ca_pub.write_text(ca + "\n")
    assert fingerprint(ca_pub) in info
    serial = re.search(r"Serial: (\d+)", info).group(1)

    s = sshd_factory(trusted_ca=ca)
    r = run_ssh(s, user="root", command="id -un", identity=key)
    assert r.returncode == 0 and r.stdout.strip() == "root", (r.stderr, s.log())
    # the auth log: who, the key's fingerprint, principals, serial, validity
    e = wait_event(d, lambda e: e["allowed"])
    assert e["email"] == "alice@example.com" and e["app"] == "shell"
    assert e["key_fingerprint"] == fingerprint(tmp_path / "id_ed25519.pub")
    assert e["principals"] == "alice,u-alice,root" and e["serial"] == serial
    assert e["valid_before"] == j["expires_at"] and e["valid_after"] <= t0 - 59
    assert e["key_id"] == "alice@example.com" and e["service_token"] is None

    # another login than the certificate's principals: refused by sshd
    r = run_ssh(s, user="nobody", command="true", identity=key)
    assert r.returncode == 255, r
    assert "Permission denied" in r.stderr

    # a person without the group gets only their own names: sshd refuses them as root
    key_b = keygen(tmp_path / "bob")
    r = sign(d, (tmp_path / "bob.pub").read_text(), ak.issue(d, "shell", "bob@example.com"))
    assert r.status == 200, r
    write_cert(key_b, r.json()["certificate"])
    assert principals_of(cert_info(f"{key_b}-cert.pub")) == ["bob", "u-bob"]
    r = run_ssh(s, user="root", command="true", identity=key_b)
    assert r.returncode == 255 and "Permission denied" in r.stderr, r
    # without the certificate, the bare key is refused too (it is in no authorized_keys)
    os.unlink(f"{key}-cert.pub")
    r = run_ssh(s, user="root", command="true", identity=key)
    assert r.returncode == 255, r


def test_per_email_mapping_and_ecdsa_p256(latchd, tmp_path, sshd_factory):
    d = latchd({"apps": [ssh_app(PERSON_SSH)]})
    key = keygen(tmp_path / "id_ecdsa", kind="ecdsa", bits=256)
    r = sign(d, (tmp_path / "id_ecdsa.pub").read_text(), ak.issue(d, "shell", "Carol@Example.com"))
    assert r.status == 200, r
    assert r.json()["certificate"].startswith("ecdsa-sha2-nistp256-cert-v01@openssh.com ")
    write_cert(key, r.json()["certificate"])
    info = cert_info(f"{key}-cert.pub")
    assert principals_of(info) == ["carol", "u-carol", "root", "backup"]
    s = sshd_factory(trusted_ca=ca_line(d))
    r = run_ssh(s, user="root", command="echo ok", identity=key)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stderr, s.log())


def test_options_off_and_expired_certificate_refused_by_sshd(latchd, tmp_path, sshd_factory):
    d = latchd({"apps": [ssh_app({"principals": ["root"], "cert_duration": "2s",
                                  "permit_pty": False, "permit_port_forwarding": False})]})
    key = keygen(tmp_path / "k")
    r = sign(d, (tmp_path / "k.pub").read_text(), ak.issue(d, "shell", "alice@example.com"))
    assert r.status == 200, r
    exp = r.json()["expires_at"]
    write_cert(key, r.json()["certificate"])
    info = cert_info(f"{key}-cert.pub")
    assert "Extensions: (none)" in info, info
    s = sshd_factory(trusted_ca=ca_line(d))
    # wait until the certificate is past its valid_before (no timing asserted: only its end)
    while time.time() < exp + 1:
        time.sleep(0.2)
    r = run_ssh(s, user="root", command="true", identity=key)
    assert r.returncode == 255 and "Permission denied" in r.stderr, r
    assert "expired" in s.log() or "invalid" in s.log().lower() or "Certificate" in s.log(), s.log()


def test_service_token_certificate(latchd, tmp_path, sshd_factory):
    deploy = ak.make_service_token(tmp_path, "deploy")
    other = ak.make_service_token(tmp_path, "other")
    nossh = ak.make_service_token(tmp_path, "nossh")
    deploy[2]["ssh"] = {"principals": ["deploy", "root", "svc-{service_token}", "{email_local}"]}
    other[2]["ssh"] = {"principals": ["root"]}
    policies = [P("robots", "service_auth", {"service_token": "deploy"}, {"service_token": "nossh"}),
                P("staff", "allow", {"email_domain": "example.com"})]
    d = latchd({"service_tokens": [deploy[2], other[2], nossh[2]],
                "apps": [ssh_app({"principals": ["{email_local}"]}, policies=policies)]})
    key = keygen(tmp_path / "svc")
    pub = (tmp_path / "svc.pub").read_text()
    hdr = [("CF-Access-Client-Id", deploy[0]), ("CF-Access-Client-Secret", deploy[1])]
    r = sign(d, pub, headers=hdr)
    assert r.status == 200, r
    write_cert(key, r.json()["certificate"])
    info = cert_info(f"{key}-cert.pub")
    assert 'Key ID: "deploy"' in info
    # {email_local} yields nothing for a service token; the app's list is for people
    assert principals_of(info) == ["deploy", "root", "svc-deploy"]
    s = sshd_factory(trusted_ca=ca_line(d))
    r = run_ssh(s, user="root", command="id -un", identity=key)
    assert r.returncode == 0 and r.stdout.strip() == "root", (r.stderr, s.log())
    e = wait_event(d, lambda e: e["allowed"] and e["service_token"] == "deploy")
    assert e["email"] is None and e["key_id"] == "deploy"
    # a wrong secret, a token the policy does not admit, one with no ssh principals
    r = sign(d, pub, headers=[("CF-Access-Client-Id", deploy[0]), ("CF-Access-Client-Secret", "x" * 40)])
    assert r.status == 401, r
    r = sign(d, pub, headers=[("CF-Access-Client-Id", deploy[0])])
    assert r.status == 401, r
    r = sign(d, pub, headers=[("CF-Access-Client-Id", other[0]), ("CF-Access-Client-Secret", other[1])])
    assert r.status == 403 and r.json()["error"] == "access_denied", r
    r = sign(d, pub, headers=[("CF-Access-Client-Id", nossh[0]), ("CF-Access-Client-Secret", nossh[1])])
    assert r.status == 403 and r.json()["error"] == "principal_not_allowed", r
    assert "certificate not allowed for this principal" in r.json()["message"]


def test_refusals(latchd, tmp_path):
    d = latchd({"apps": [ssh_app({"principals": ["{email_local}"]}),
                         ssh_app(None, host="web.localhost", name="web"),
                         ssh_app({"principals": ["ops"]}, host="open.localhost", name="open",
                                 policies=[P("all", "bypass", {"everyone": {}})])]})
    keygen(tmp_path / "ok")
    pub = (tmp_path / "ok.pub").read_text()
    tok = ak.issue(d, "shell", "alice@example.com")
    # no token; a token for another app; a bad token
    r = sign(d, pub)
    assert r.status == 401 and r.json()["error"] == "not_authenticated", r
    r = sign(d, pub, ak.issue(d, "web", "alice@example.com"))
    assert r.status == 401, r
    r = sign(d, pub, tok[:-3] + "AAA")
    assert r.status == 401, r
    # a person outside the policy
    r = sign(d, pub, ak.issue(d, "shell", "mallory@evil.test"))
    assert r.status == 403 and r.json()["error"] == "access_denied", r
    # an e-mail whose local part is no safe login name: the template yields nothing
    r = sign(d, pub, ak.issue(d, "shell", "o'hara@example.com"))
    assert r.status == 403 and r.json()["error"] == "principal_not_allowed", r
    e = wait_event(d, lambda e: not e["allowed"] and e["reason"] == "no principal")
    assert e["email"] == "o'hara@example.com"
    # an app without ssh:, a bypass app (no identity), the auth domain, GET
    r = sign(d, pub, ak.issue(d, "web", "alice@example.com"), host="web.localhost")
    assert r.status == 404 and r.json()["error"] == "ssh_not_configured", r
    r = sign(d, pub, host="open.localhost")
    assert r.status == 401, r
    r = sign(d, pub, tok, method="GET", body=b"")
    assert r.status == 405, r
    # a page of another site posting through the person's browser (the cookie goes along)
    cookie = ("Cookie", f"CF_Authorization={tok}")
    for h in (("Sec-Fetch-Site", "cross-site"), ("Origin", "http://evil.example"),
              ("Referer", "http://evil.example/x")):
        r = sign(d, pub, headers=[cookie, h])
        assert r.status == 403 and r.json()["error"] == "cross_site", (h, r)
    r = sign(d, pub, headers=[cookie])
    assert r.status == 200, r
    # key types and bodies
    for kind, bits in (("rsa", 2048), ("ecdsa", 384), ("ecdsa", 521)):
        keygen(tmp_path / f"k{kind}{bits}", kind=kind, bits=bits)
        r = sign(d, (tmp_path / f"k{kind}{bits}.pub").read_text(), tok)
        assert r.status == 400 and r.json()["error"] == "unsupported_key_type", (kind, r)
        assert "ssh-ed25519 and ecdsa-sha2-nistp256" in r.json()["message"]
    typ, b64 = pub.split()[:2]
    bad = [
        "", "ssh-ed25519", "ssh-ed25519 !!!!", "ssh-ed25519 " + b64[:-4],
        "ecdsa-sha2-nistp256 " + b64,                     # the blob is another type's
        "ssh-ed25519 " + b64 + "\x00 c", "ssh-ed25519\x01" + b64,
        "ssh-ed25519 " + "A" * 9000,
        "ssh-ed25519-cert-v01@openssh.com " + b64,
    ]
    for line in bad:
        r = sign(d, line, tok)
        assert r.status == 400, (line[:60], r)
    for body in (b"", b"{", b"[]", b'{"public_key": 5}', b'{"key": "x"}',
                 b'{"public_key": "a", "public_key": "b"}'):
        r = sign(d, None, tok, body=body)
        assert r.status == 400 and r.json()["error"] == "bad_request", (body, r)
    # nothing else was issued by any of those
    assert len([e for e in auth_events(d) if e["allowed"]]) == 1
    assert d.alive()


def test_ssh_ca_command(latchd, tmp_path):
    d = latchd({"apps": [ssh_app({"principals": ["ops"]}), ssh_app(None, host="web.localhost", name="web app")]})
    first = ca_line(d)
    assert ca_line(d) == first
    files = list((ak.state_dir(d) / "ssh_ca").iterdir())
    assert [f.name for f in files] == ["shell.pem"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # a certificate signed now is signed by that same CA
    keygen(tmp_path / "k")
    r = sign(d, (tmp_path / "k.pub").read_text(), ak.issue(d, "shell", "alice@example.com"))
    assert r.status == 200, r
    (tmp_path / "k-cert.pub").write_text(r.json()["certificate"] + "\n")
    (tmp_path / "ca.pub").write_text(first + "\n")
    assert fingerprint(tmp_path / "ca.pub") in cert_info(tmp_path / "k-cert.pub")
    # another app has its own CA; an app name with a space is still one file
    p = ak.cli(d, "ssh-ca", "--app", "web app")
    assert p.returncode == 0 and p.stdout.split()[1] != first.split()[1], p
    assert "no ssh:" in p.stderr
    # unknown app: a clear error
    p = ak.cli(d, "ssh-ca", "--app", "nope")
    assert p.returncode == 1 and "no app named 'nope'" in p.stderr and not p.stdout, p
    p = ak.cli(d, "ssh-ca")
    assert p.returncode == 64 and "--app" in p.stderr, p


def test_ssh_ca_made_by_root_belongs_to_the_state_dirs_owner(tmp_path):
    """An administrator runs `latchd ssh-ca` as root for a daemon that runs as another user: the
    CA it makes is that user's (the daemon must read it), still 0600."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    o = ak.offline(tmp_path / "o", {"apps": [ssh_app({"principals": ["ops"]})]})
    sd = tmp_path / "o" / "state"
    sd.mkdir(parents=True, mode=0o700)
    os.chown(sd, 65534, 65534)
    p = ak.cli(o, "ssh-ca", "--app", "shell", check=True)
    assert p.stdout.startswith("ssh-ed25519 "), p
    for f in (sd / "ssh_ca", sd / "ssh_ca" / "shell.pem"):
        st = os.stat(f)
        assert (st.st_uid, st.st_gid) == (65534, 65534), f
    assert stat.S_IMODE(os.stat(sd / "ssh_ca" / "shell.pem").st_mode) == 0o600


@pytest.mark.parametrize("ssh,words", [
    ({"principals": ["{nope}"]}, "unknown template"),
    ({"principals": ["a,b"]}, "not a safe login name"),
    ({"principals": ["-oProxyCommand"]}, "not a safe login name"),
    ({"principals": ["a b"]}, "not a safe login name"),
    ({"principals": "root"}, "must be a list"),
    ({"cert_duration": "2h"}, "at most 1h"),
    ({"principals_by_group": ["sre"]}, "must be a mapping"),
    ({"principals_by_email": {"nobody": ["x"]}}, "not an e-mail address"),
    ({"permit_pty": "yes"}, "permit_pty"),
    ({"principal": ["x"]}, "unknown key 'principal'"),
])
def test_config_errors(tmp_path, ssh, words):
    import yaml
    from test_config_check import check, error_lines
    cfg = {"listen": [{"address": "127.0.0.1:1"}], "auth_domain": "auth.localhost",
           "state_dir": str(tmp_path / "s"),
           "apps": [ssh_app(ssh)]}
    path = tmp_path / "latch.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    rc, out = check(path)
    errs = error_lines(path, out)
    assert rc == 2 and errs and any(words in m for _, _, m in errs), out


def test_service_token_ssh_config_error(tmp_path):
    import yaml
    from test_config_check import check, error_lines
    cfg = {"listen": [{"address": "127.0.0.1:1"}], "auth_domain": "auth.localhost",
           "state_dir": str(tmp_path / "s"),
           "service_tokens": [{"name": "t", "client_id": "x.access", "secret_sha256": "0" * 64,
                               "ssh": {"principals": ["ok", "bad name"]}}],
           "apps": [ssh_app({"principals": ["ok"]})]}
    path = tmp_path / "latch.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    rc, out = check(path)
    errs = error_lines(path, out)
    assert rc == 2 and len(errs) == 1 and "'bad name' is not a safe login name" in errs[0][2], out


# --------------------------------------------------------------------------------------------
# two nodes on one Redis: one CA per app for the whole cluster, sealed at rest in Redis

def test_two_nodes_share_the_ca(tmp_path, sshd_factory, request):
    from rediskit import REDIS_SERVER, Redis
    from test_cluster import A, B, Cluster, issue
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("needs redis-server")
    redis = Redis(tmp_path / "redis").start()
    cluster = Cluster(tmp_path, redis)
    try:
        apps = cluster.config()["apps"]
        apps[0]["ssh"] = {"principals": ["root"]}   # api
        na = cluster.node("a", A, apps=apps)
        nb = cluster.node("b", B, apps=apps)
        key = keygen(tmp_path / "k")
        pub = (tmp_path / "k.pub").read_text()
        body = json.dumps({"public_key": pub})
        hdr = [("Content-Type", "application/json")]
        # first use on node A makes the CA; node B signs with the same one (it adopts the
        # cluster's before its first certificate, never makes its own)
        r = na.req("/cdn-cgi/access/cert_sign", "api", method="POST", body=body,
                   headers=hdr + [("cf-access-token", issue(na, "alice@example.com"))])
        assert r.status == 200, r
        ca_a = ak.cli(na, "ssh-ca", "--app", "api", check=True).stdout.strip()
        ca_b = ak.cli(nb, "ssh-ca", "--app", "api", check=True).stdout.strip()
        assert ca_a == ca_b and ca_a.startswith("ssh-ed25519 "), (ca_a, ca_b)
        r = nb.req("/cdn-cgi/access/cert_sign", "api", method="POST", body=body,
                   headers=hdr + [("cf-access-token", issue(nb, "bob@example.com"))])
        assert r.status == 200, r
        write_cert(key, r.json()["certificate"])
        s = sshd_factory(trusted_ca=ca_a)
        r = run_ssh(s, user="root", command="id -un", identity=key)
        assert r.returncode == 0 and r.stdout.strip() == "root", (r.stderr, s.log())
        # at rest in Redis: sealed, no private key in the clear
        vals = redis.cmd("HGETALL", "latch:sshca")
        assert vals and vals[0] == b"api" and b"PRIVATE KEY" not in vals[1], vals
        # a node whose CA file differs (one made while apart, here planted) takes the cluster's
        other = ak.cli(na, "ssh-ca", "--app", "api2", check=True).stdout.split()[1]
        planted = ak.state_dir(nb) / "ssh_ca" / "api2.pem"
        planted.parent.mkdir(exist_ok=True)
        planted.write_bytes((ak.state_dir(na) / "ssh_ca" / "api.pem").read_bytes())
        assert ak.cli(nb, "ssh-ca", "--app", "api2", check=True).stdout.split()[1] == other
    finally:
        cluster.finish(False)
        redis.stop()
