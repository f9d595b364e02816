"""The policy engine against the real daemon (SPEC.md §2 selectors, §3.3 evaluation order, §4
most-specific path apps): every selector with tokens from `latchd token issue`, the `ip`
selector over IPv4 and IPv6 and through X-Forwarded-For (believed only from trusted_proxies),
`certificate`/`common_name` over mTLS with curl, include/require/exclude, bypass and
service_auth before allow and block, first match wins, default deny."""

import socket
import subprocess

import pytest

import authkit as ak
from harness import curl, free_port, get, wait_port


def allow(name, domains, *include, require=(), exclude=(), policy="p"):
    return {"name": name, "domains": list(domains), "origin": "echo",
            "policies": [{"name": policy, "decision": "allow", "include": list(include),
                          "require": list(require), "exclude": list(exclude)}]}


def bypass(name, domains, *include, policy="p"):
    return {"name": name, "domains": list(domains), "origin": "echo",
            "policies": [{"name": policy, "decision": "bypass", "include": list(include)}]}


def status(d, host, token=None, path="/", headers=()):
    hs = list(headers)
    if token:
        hs.append(("cf-access-token", token))
    return get(d.port, path, host=host, headers=hs).status


_seq = [0]


def unique(path="/"):
    """A path no other request of the test uses, so its log line can be found."""
    _seq[0] += 1
    return f"{path.rstrip('/')}/u{_seq[0]}"


def log_for(d, path):
    return d.wait_log(lambda e: e["path"] == path)


def test_identity_selectors(latchd):
    apps = [
        allow("everyone", ["everyone.localhost"], {"everyone": {}}),
        allow("email", ["email.localhost"], {"email": "alice@corp.com"}),
        allow("domain", ["domain.localhost"], {"email_domain": "corp.com"}),
        allow("list", ["list.localhost"], {"email_list": ["alice@corp.com", "carol@other.org"]}),
        allow("group", ["group.localhost"], {"group": "eng"}),
        allow("idp", ["idp.localhost"], {"idp": "corp"}),
        allow("amr", ["amr.localhost"], {"auth_method": "mfa"}),
    ]
    idps = [{"name": n, "type": "onetimepin", "mail": "console", "from": "access@corp.com"}
            for n in ("corp", "email-code")]
    d = latchd({"apps": apps, "identity_providers": idps})
    T = lambda app, email, **kw: ak.issue(d, app, email, **kw)  # noqa: E731
    cases = [
        # app, host, token kwargs, expected status
        ("everyone", "alice@corp.com", {}, 200),
        ("everyone", "x@anything.example", {}, 200),
        ("email", "alice@corp.com", {}, 200),
        ("email", "ALICE@corp.com", {}, 200),      # token issue lowercases
        ("email", "bob@corp.com", {}, 403),
        ("email", "alice@corp.com.evil.org", {}, 403),
        ("domain", "bob@corp.com", {}, 200),
        ("domain", "bob@sub.corp.com", {}, 403),
        ("domain", "bob@notcorp.com", {}, 403),
        ("domain", "corp.com@evil.org", {}, 403),
        ("list", "carol@other.org", {}, 200),
        ("list", "alice@corp.com", {}, 200),
        ("list", "dave@corp.com", {}, 403),
        ("group", "bob@corp.com", {"groups": ["ops", "eng"]}, 200),
        ("group", "bob@corp.com", {"groups": ["engineering"]}, 403),
        ("group", "bob@corp.com", {}, 403),
        ("idp", "bob@corp.com", {"idp": "corp"}, 200),
        ("idp", "bob@corp.com", {"idp": "email-code"}, 403),
        ("amr", "bob@corp.com", {"amr": ["pwd", "mfa"]}, 200),
        ("amr", "bob@corp.com", {"amr": ["pwd"]}, 403),
    ]
    bad = []
    for app, email, kw, want in cases:
        got = status(d, f"{app}.localhost", T(app, email, **kw))
        if got != want:
            bad.append((app, email, kw, want, got))
    assert not bad, bad
    # nobody without a token: 401 everywhere (even `everyone` means every authenticated person)
    for app in apps:
        assert status(d, app["domains"][0]) == 401, app["name"]


def test_ip_selector_v4_and_v6(latchd):
    port6 = None
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    port6 = s.getsockname()[1]
    s.close()
    port = free_port()
    cfg = {"listen": [{"address": f"127.0.0.1:{port}"}, {"address": f"[::1]:{port6}"}],
           "apps": [bypass("v4", ["v4.localhost"], {"ip": "127.0.0.1/32"}),
                    bypass("v6", ["v6.localhost"], {"ip": "::1/128"}),
                    bypass("net10", ["net10.localhost"], {"ip": "10.0.0.0/8"}),
                    bypass("both", ["both.localhost"], {"ip": "127.0.0.0/8"}, {"ip": "::1/128"})]}
    d = latchd(cfg, port=port)
    wait_port(port6, 10, d.proc, host="::1")
    via6 = lambda host: curl(f"http://[::1]:{port6}/", "-H", f"Host: {host}").status  # noqa: E731
    via4 = lambda host: curl(f"http://127.0.0.1:{port}/", "-H", f"Host: {host}").status  # noqa: E731
    assert via4("v4.localhost") == 200 and via6("v4.localhost") == 403
    assert via6("v6.localhost") == 200 and via4("v6.localhost") == 403
    assert via4("net10.localhost") == 403 and via6("net10.localhost") == 403
    assert via4("both.localhost") == 200 and via6("both.localhost") == 200
    ips = {e["client_ip"] for e in d.log_lines() if e["app"] == "v6"}
    assert ips == {"::1", "127.0.0.1"}, ips


def test_x_forwarded_for_only_from_trusted_proxies(latchd):
    apps = [bypass("inner", ["inner.localhost"], {"ip": "10.1.2.0/24"}, policy="office"),
            allow("staff", ["staff.localhost"], {"email_domain": "corp.com"},
                  require=[{"ip": "10.1.2.0/24"}])]
    # untrusted peer: its X-Forwarded-For is ignored for the ip selector
    d = latchd({"apps": apps}, name="untrusted")
    for xff in ("10.1.2.3", "10.1.2.3, 10.1.2.4", "127.0.0.1, 10.1.2.3"):
        path = unique()
        r = get(d.port, path, host="inner.localhost", headers=[("X-Forwarded-For", xff)])
        assert r.status == 403, (xff, r)
        assert log_for(d, path)["client_ip"] == "127.0.0.1"
    tok = ak.issue(d, "staff", "bob@corp.com")
    assert status(d, "staff.localhost", tok, headers=[("X-Forwarded-For", "10.1.2.3")]) == 403
    for spelling in ("x-forwarded-for", "X-FORWARDED-FOR", "Forwarded", "X-Real-IP",
                     "True-Client-IP", "CF-Connecting-IP"):
        v = "for=10.1.2.3" if spelling == "Forwarded" else "10.1.2.3"
        assert status(d, "inner.localhost", headers=[(spelling, v)]) == 403, spelling
    d.stop()
    # a trusted proxy in front: the address it reports is the client's
    d = latchd({"apps": apps, "trusted_proxies": ["127.0.0.0/8"]}, name="trusted")
    path = unique()
    r = get(d.port, path, host="inner.localhost", headers=[("X-Forwarded-For", "10.1.2.3")])
    assert r.status == 200, r
    e = log_for(d, path)
    assert e["client_ip"] == "10.1.2.3" and e["decision"] == "bypass" and e["policy"] == "office"
    tok = ak.issue(d, "staff", "bob@corp.com")
    assert status(d, "staff.localhost", tok, headers=[("X-Forwarded-For", "10.1.2.3")]) == 200
    # the right-most untrusted entry counts: a forged left-most entry does not help
    assert status(d, "inner.localhost", headers=[("X-Forwarded-For", "10.1.2.3, 192.0.2.7")]) == 403
    assert status(d, "inner.localhost", headers=[("X-Forwarded-For", "192.0.2.7, 10.1.2.3")]) == 200
    assert status(d, "inner.localhost") == 403  # the proxy itself (127.0.0.1) is not 10.1.2.0/24


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_pki(tmp):
    """A CA, a server certificate for *.localhost, a client certificate CN=robot from the CA, and
    one CN=robot from a rogue CA."""
    for ca in ("ca", "rogue"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=latch test {ca}", cwd=tmp)
    (tmp / "srv.ext").write_text("subjectAltName=DNS:cert.localhost,DNS:cn.localhost,"
                                 "DNS:other.localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=cert.localhost", cwd=tmp)
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "srv.ext", cwd=tmp)
    for name, ca, cn in (("robot", "ca", "robot"), ("human", "ca", "human"),
                         ("evil", "rogue", "robot")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={cn}", cwd=tmp)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", cwd=tmp)


@pytest.mark.timeout(120)
def test_certificate_and_common_name_over_mtls(latchd, tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    _make_pki(pki)
    port = free_port()
    cfg = {"listen": [{"address": f"127.0.0.1:{port}",
                       "tls": {"cert": str(pki / "srv.pem"), "key": str(pki / "srv.key")},
                       "client_ca": str(pki / "ca.pem")}],
           "apps": [bypass("cert", [f"cert.localhost"], {"certificate": {}}),
                    bypass("cn", ["cn.localhost"], {"common_name": "robot"}),
                    allow("other", ["other.localhost"], {"email_domain": "corp.com"},
                          require=[{"certificate": {}}])]}
    d = latchd(cfg, port=port)

    def req(host, who=None, token=None):
        args = ["--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(pki / "ca.pem")]
        if who:
            args += ["--cert", str(pki / f"{who}.pem"), "--key", str(pki / f"{who}.key")]
        if token:
            args += ["-H", f"cf-access-token: {token}"]
        r = curl(f"https://{host}:{port}/", *args)
        return r.status

    assert req("cert.localhost", "robot") == 200
    assert req("cert.localhost", "human") == 200
    assert req("cert.localhost") in (0, 403)           # no certificate
    assert req("cert.localhost", "evil") in (0, 403)   # a certificate from another CA
    assert req("cn.localhost", "robot") == 200
    assert req("cn.localhost", "human") in (0, 403)
    assert req("cn.localhost", "evil") in (0, 403)     # right CN, wrong CA
    assert req("cn.localhost") in (0, 403)
    tok = ak.issue(d, "other", "bob@corp.com")
    assert req("other.localhost", "robot", tok) == 200
    assert req("other.localhost", None, tok) in (0, 403)
    assert req("other.localhost", "evil", tok) in (0, 403)


def test_evaluation_order(latchd):
    apps = [
        {"name": "bypass-first", "domains": ["o1.localhost"], "origin": "echo", "policies": [
            {"name": "closed", "decision": "block", "include": [{"everyone": {}}]},
            {"name": "open", "decision": "bypass", "include": [{"everyone": {}}]}]},
        {"name": "allow-then-block", "domains": ["o2.localhost"], "origin": "echo", "policies": [
            {"name": "staff", "decision": "allow", "include": [{"email_domain": "corp.com"}]},
            {"name": "no-bob", "decision": "block", "include": [{"email": "bob@corp.com"}]}]},
        {"name": "block-then-allow", "domains": ["o3.localhost"], "origin": "echo", "policies": [
            {"name": "no-bob", "decision": "block", "include": [{"email": "bob@corp.com"}]},
            {"name": "staff", "decision": "allow", "include": [{"email_domain": "corp.com"}]}]},
        {"name": "default-deny", "domains": ["o4.localhost"], "origin": "echo", "policies": [
            {"name": "alice-only", "decision": "allow", "include": [{"email": "alice@corp.com"}]}]},
        {"name": "bypass-by-ip", "domains": ["o5.localhost"], "origin": "echo", "policies": [
            {"name": "no-bob", "decision": "block", "include": [{"email": "bob@corp.com"}]},
            {"name": "loopback", "decision": "bypass", "include": [{"ip": "127.0.0.0/8"}]}]},
    ]
    d = latchd({"apps": apps})
    tok = {(a, e): ak.issue(d, a, e) for a in ("bypass-first", "allow-then-block",
                                               "block-then-allow", "default-deny", "bypass-by-ip")
           for e in ("bob@corp.com", "alice@corp.com")}
    cases = [
        # host, app, email or None, status, decision, policy
        ("o1.localhost", "bypass-first", None, 200, "bypass", "open"),
        ("o1.localhost", "bypass-first", "bob@corp.com", 200, "bypass", "open"),
        ("o2.localhost", "allow-then-block", "bob@corp.com", 200, "allow", "staff"),
        ("o3.localhost", "block-then-allow", "bob@corp.com", 403, "block", "no-bob"),
        ("o3.localhost", "block-then-allow", "alice@corp.com", 200, "allow", "staff"),
        ("o4.localhost", "default-deny", "bob@corp.com", 403, "deny", None),
        ("o4.localhost", "default-deny", "alice@corp.com", 200, "allow", "alice-only"),
        ("o4.localhost", "default-deny", None, 401, "login_required", None),
        ("o5.localhost", "bypass-by-ip", "bob@corp.com", 200, "bypass", "loopback"),
    ]
    bad = []
    for host, app, email, want, decision, policy in cases:
        hs = [("cf-access-token", tok[(app, email)])] if email else []
        path = unique("/order")
        r = get(d.port, path, host=host, headers=hs)
        e = log_for(d, path)
        got = (r.status, e["decision"], e["policy"])
        if got != (want, decision, policy):
            bad.append((host, email, (want, decision, policy), got))
        if r.status == 403:
            assert b"no-bob" not in r.body and b"alice-only" not in r.body  # no policy internals
    assert not bad, bad
    # a bypass never forwards an identity, even when a valid token came along
    h = ak.echo_headers(get(d.port, "/", host="o1.localhost",
                            headers=[("cf-access-token", tok[("bypass-first", "bob@corp.com")])]))
    assert "cf-access-jwt-assertion" not in h and "cf-access-authenticated-user-email" not in h


def test_require_and_exclude(latchd):
    app = {"name": "eng", "domains": ["eng.localhost"], "origin": "echo", "policies": [
        {"name": "engineers", "decision": "allow",
         "include": [{"email_domain": "corp.com"}, {"email": "guest@partner.org"}],
         "require": [{"group": "eng"}, {"auth_method": "mfa"}],
         "exclude": [{"email": "contractor@corp.com"}, {"group": "suspended"}]}]}
    d = latchd({"apps": [app]})
    cases = [
        ("bob@corp.com", ["eng"], ["mfa"], 200),
        ("guest@partner.org", ["eng"], ["mfa"], 200),        # include is OR
        ("bob@corp.com", ["eng"], ["pwd"], 403),             # require is AND
        ("bob@corp.com", ["ops"], ["mfa"], 403),
        ("bob@corp.com", [], [], 403),
        ("contractor@corp.com", ["eng"], ["mfa"], 403),      # exclude is NOT
        ("bob@corp.com", ["eng", "suspended"], ["mfa"], 403),
        ("eve@evil.org", ["eng"], ["mfa"], 403),
    ]
    bad = []
    for email, groups, amr, want in cases:
        t = ak.issue(d, "eng", email, groups=groups, amr=amr)
        got = status(d, "eng.localhost", t)
        if got != want:
            bad.append((email, groups, amr, want, got))
    assert not bad, bad


def test_most_specific_path_app_with_tokens(latchd):
    apps = [allow("api", ["api.localhost"], {"email_domain": "corp.com"}, policy="staff"),
            allow("api-admin", ["api.localhost/admin/*"], {"group": "sre"}, policy="sre"),
            bypass("api-health", ["api.localhost/health"], {"everyone": {}}, policy="public")]
    d = latchd({"apps": apps})
    api = ak.issue(d, "api", "bob@corp.com", groups=["sre"])
    admin_sre = ak.issue(d, "api-admin", "bob@corp.com", groups=["sre"])
    admin_dev = ak.issue(d, "api-admin", "bob@corp.com", groups=["dev"])
    assert status(d, "api.localhost", api, "/x") == 200
    # the admin app's rules replace the api app's: an api token is for another audience there
    for path in ("/admin/users", "/admin/../admin/users", "/%61dmin/users", "//admin/users",
                 "/admin;x/users"):
        r = get(d.port, path, host="api.localhost", headers=[("cf-access-token", api)])
        assert r.status == 401 and r.json()["token_error"] == "bad_audience", (path, r)
        assert status(d, "api.localhost", admin_sre, path) == 200, path
        assert status(d, "api.localhost", admin_dev, path) == 403, path
    # and an admin token does not open the wider app
    assert status(d, "api.localhost", admin_sre, "/x") == 401
    assert status(d, "api.localhost", None, "/health") == 200
    assert status(d, "api.localhost", None, "/health/x") == 401
    # the log names the app that decided
    path = unique("/admin/users")
    r = get(d.port, path, host="api.localhost", headers=[("cf-access-token", admin_sre)])
    e = log_for(d, path)
    assert e["app"] == "api-admin" and e["policy"] == "sre" and e["email"] == "bob@corp.com"
    assert e["sub"]


def test_policies_rechecked_on_every_request(latchd):
    """A valid token is identity, not access: non-identity selectors are judged per request."""
    apps = [allow("office", ["office.localhost"], {"email_domain": "corp.com"},
                  require=[{"ip": "10.0.0.0/8"}])]
    d = latchd({"apps": apps, "trusted_proxies": ["127.0.0.1/32"]})
    t = ak.issue(d, "office", "bob@corp.com")
    assert status(d, "office.localhost", t, headers=[("X-Forwarded-For", "10.9.9.9")]) == 200
    assert status(d, "office.localhost", t, headers=[("X-Forwarded-For", "192.0.2.1")]) == 403
    assert status(d, "office.localhost", t, headers=[("X-Forwarded-For", "10.9.9.9")]) == 200
