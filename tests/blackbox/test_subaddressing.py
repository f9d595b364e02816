"""How addresses compare (issue 10, SPEC.md §5): a block or an exclude naming an address also
refuses its sub-addresses (and Gmail's other spellings), whichever way a person arrives: the
one-time PIN, an OpenID Connect provider, a token on the request path, `latchd policy-test`;
an allow admits exactly what it names; what is not one plain address is refused at sign-in."""

import re

import pytest

import authkit as ak
from browser import (Client, console_code, form_fields, idp_factory, login_config,  # noqa: F401
                     oidc_login, otp_idp)
from harness import free_port

pytestmark = pytest.mark.timeout(120)


def app(name, port, policies, idps=None):
    a = {"name": name, "domains": [f"{name}.localhost:{port}"], "origin": "echo", "policies": policies}
    if idps:
        a["allowed_idps"] = idps
    return a


def apps(port, idps=None):
    return [
        app("staff", port, [{"name": "staff", "decision": "allow", "include": [{"email_domain": "example.com"}],
                             "exclude": [{"email": "contractor@example.com"}]}], idps),
        app("shop", port, [{"name": "no-contractor", "decision": "block",
                            "include": [{"email": "contractor@example.com"}]},
                           {"name": "all", "decision": "allow", "include": [{"everyone": {}}]}], idps),
        app("listed", port, [{"name": "two", "decision": "allow",
                              "include": [{"email_list": ["alice@example.com", "bob@example.com"]}]},
                             {"name": "dev", "decision": "allow", "include": [{"email": "dev@example.com"}]}], idps),
        app("mail", port, [{"name": "gmail", "decision": "allow", "include": [{"email_domain": "gmail.com"}],
                            "exclude": [{"email_list": ["john.doe@gmail.com"]}]}], idps),
    ]


@pytest.fixture
def gw(latchd):
    port = free_port()
    d = latchd(login_config(port, [otp_idp()], apps(port), trusted_proxies=["127.0.0.0/8"]), port=port)
    d.auth = f"http://auth.localhost:{port}"
    return d


CLIENTS = iter(range(1, 1 << 16))


def pins(d, email):
    return len(re.findall(r"one-time PIN for " + re.escape(email) + r" ", d.stderr()))


def pin_attempt(d, host, email):
    """Asks a code for `email` on app `host`. Returns (code page, csrf, client)."""
    cl = Client()
    n = next(CLIENTS)  # each attempt from a client of its own: the PIN limits stay out of the way
    xff = [("X-Forwarded-For", f"10.{n >> 8}.{n & 255}.1")]
    r, chain = cl.follow(f"http://{host}.localhost:{d.port}/", headers=xff)
    assert r.status == 200 and "Sign in with your email" in r.text, (r, chain)
    csrf = form_fields(r.text)["csrf"]
    return cl.post(f"{d.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email}, headers=xff), csrf, cl


def sent(d, email):
    """Whether a code for `email` reaches the log (the console mailer) soon: polled, since the
    mail goes on a background job."""
    try:
        console_code(d, email, timeout=1.5)
        return True
    except AssertionError:
        return False


REFUSED = [  # (app, address): a block or an exclude, reached through a sub-address or spelling
    ("staff", "contractor@example.com"), ("staff", "contractor+x@example.com"),
    ("staff", "Contractor+Evil@EXAMPLE.com"), ("staff", "contractor+a+b@example.com"),
    ("shop", "contractor+x@example.com"), ("shop", "CONTRACTOR+shop@example.com"),
    ("listed", "alice+x@example.com"), ("listed", "dev+x@example.com"),
    ("mail", "johndoe@gmail.com"), ("mail", "j.o.h.n.doe+x@gmail.com"), ("mail", "john.doe@googlemail.com"),
]
ADMITTED = [("staff", "contractor-x@example.com"), ("staff", "contractors@example.com"),
            ("shop", "contractor.x@example.com"), ("listed", "alice@example.com"),
            ("listed", "Dev@Example.com"), ("mail", "jane.doe+x@gmail.com")]


def test_pin_sign_in_cannot_get_around_a_block_or_exclude(gw):
    for host, email in REFUSED + ADMITTED:
        r, csrf, cl = pin_attempt(gw, host, email)
        assert r.status == 200 and "Check your email" in r.text, (host, email, r)  # the same page
    for host, email in REFUSED:
        assert pins(gw, email.lower()) == 0, (host, email)
    for host, email in ADMITTED:
        assert sent(gw, email.lower()), (host, email)
    # and an admitted one goes all the way through
    r, csrf, cl = pin_attempt(gw, "staff", "c2@example.com")
    code = console_code(gw, "c2@example.com")
    r = cl.post(f"{gw.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code})
    assert r.status == 302 and "authorized?grant=" in r.location, r


def test_tokens_on_the_request_path(gw):
    """A token names a sub-address (e.g. minted before the policy changed, or by `latchd token
    issue`): the policy, checked on every request, still refuses it."""
    for host, email in REFUSED:
        tok = ak.issue(gw, host, email)
        r = ak.with_token(gw, f"{host}.localhost", tok)
        assert r.status == 403, (host, email, r.status)
    for host, email in ADMITTED:
        tok = ak.issue(gw, host, email)
        r = ak.with_token(gw, f"{host}.localhost", tok)
        assert r.status == 200 and ak.echo_headers(r)["cf-access-authenticated-user-email"] == email.lower(), \
            (host, email, r.status)


def test_revoking_an_address_revokes_its_mailbox(gw):
    """`latchd revoke --email a@x` refuses every token for the mailbox: a+tag@x, other case,
    Gmail's dots; the org token of a sub-address no longer buys app tokens either."""
    spellings = ["carl@example.com", "carl+x@example.com", "Carl+ops@Example.com"]
    toks = [ak.issue(gw, "listed", e) for e in spellings] + [ak.issue(gw, "mail", "j.o.e+1@gmail.com")]
    other = ak.issue(gw, "listed", "carla@example.com")
    for e in ("carl+anything@example.com", "joe@googlemail.com"):
        p = ak.cli(gw, "revoke", "--email", e)
        assert p.returncode == 0, p.stderr
    for t in toks:
        r = ak.with_token(gw, "listed.localhost" if t != toks[-1] else "mail.localhost", t)
        assert r.status == 401, (ak.jwt.decode(t, options={"verify_signature": False})["email"], r.status)
    assert ak.with_token(gw, "listed.localhost", other).status in (200, 403)  # another person: not revoked


def test_policy_test_agrees(gw):
    def pt(host, email):
        return ak.cli(gw, "policy-test", "--url", f"http://{host}.localhost:{gw.port}/", "--email", email)
    p = pt("staff", "contractor+x@example.com")
    assert p.returncode == 1 and re.search(r"exclude\s+email: contractor@example.com\s+matches", p.stdout), p.stdout
    p = pt("shop", "contractor+x@example.com")
    assert p.returncode == 1 and "decision: block by policy no-contractor" in p.stdout, p.stdout
    p = pt("listed", "alice+x@example.com")
    assert p.returncode == 1 and "decision: deny" in p.stdout, p.stdout
    p = pt("staff", "contractor-x@example.com")
    assert p.returncode == 0, p.stdout
    p = pt("staff", "a@evil.com@example.com")
    assert p.returncode == 1, p.stdout


def test_configured_separators(latchd):
    """A mail system that delivers name-tag@ to name@: `subaddress_separators: "+-"`."""
    port = free_port()
    d = latchd(login_config(port, [otp_idp()], apps(port), subaddress_separators="+-"), port=port)
    for host, email in [("staff", "contractor-x@example.com"), ("staff", "contractor+x@example.com"),
                        ("shop", "contractor-shop@example.com")]:
        assert ak.with_token(d, f"{host}.localhost", ak.issue(d, host, email)).status == 403, email
    assert ak.with_token(d, "staff.localhost", ak.issue(d, "staff", "contractor_x@example.com")).status == 200
    p = ak.cli(d, "policy-test", "--url", f"http://staff.localhost:{port}/", "--email", "contractor-y@example.com")
    assert p.returncode == 1, p.stdout


@pytest.mark.parametrize("value", ["+", "+-", "-", "+=_"])
def test_separators_config_accepted(latchd, tmp_path, value):
    o = ak.offline(tmp_path / "ok", login_config(1, [otp_idp()], [], subaddress_separators=value))
    p = ak.cli(o, "check")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("value", ["a", ".", "@", "+ ", "++", "\"", "1", "é", "%", "!"])
def test_separators_config_refused(latchd, tmp_path, value):
    o = ak.offline(tmp_path / "bad", login_config(1, [otp_idp()], [], subaddress_separators=value))
    p = ak.cli(o, "check")
    out = p.stdout + p.stderr
    assert p.returncode == 2 and re.search(r":\d+:\d+: 'subaddress_separators' lists characters", out), out


NOT_ONE_ADDRESS = [
    "a@evil.com@example.com", "\"a@evil.com\"@example.com", "\"contractor\"@example.com",
    "contractor@[192.0.2.1]", "contractor@192.0.2.1", "contractor@example.com.", "contractor@example..com",
    "contractor(x)@example.com", "contractor@example.com (x)", "<contractor@example.com>",
    "contractor\\@example.com", "ｃontractor@example.com", "contractor@exämple.com", "café@example.com",
    ".contractor@example.com", "contractor.@example.com", "con..tractor@example.com",
    "contractor@example.com,x@example.com", "a" * 65 + "@example.com", "contractor@-example.com",
    # routes to contractor@example.com through a mail system's percent hack or a bang path
    "contractor%example.com@example.com", "example.com!contractor@example.com",
]


def test_not_one_plain_address_is_refused_at_sign_in(gw):
    for email in NOT_ONE_ADDRESS:
        r, _, _ = pin_attempt(gw, "staff", email)
        assert r.status == 400 and "Enter one plain email address" in r.text and "Check your email" not in r.text, \
            (email, r)
    assert "one-time PIN for" not in gw.stderr()
    # nor can a token be issued for one
    for email in ("contractor@example.com.", "a@evil.com@example.com", "a@[192.0.2.1]", "\"a\"@example.com"):
        p = ak.cli(gw, "token", "issue", "--app", "staff", "--email", email)
        assert p.returncode == 64 and "not one email address" in p.stderr, (email, p.stderr)


def test_policy_addresses_are_plain_too(latchd, tmp_path):
    for bad in ("contractor@example.com.", "\"c\"@example.com", "c@[192.0.2.1]", "c@example..com"):
        cfg = login_config(1, [otp_idp()], [app("x", 1, [{"name": "p", "decision": "allow",
                                                          "include": [{"email": bad}]}])])
        p = ak.cli(ak.offline(tmp_path / f"b{len(bad)}{bad[0]}", cfg), "check")
        out = p.stdout + p.stderr
        assert p.returncode == 2 and "invalid e-mail address" in out, (bad, out)


def test_oidc_identity_cannot_get_around_an_exclude(latchd, idp_factory):
    """A provider vouches for a sub-address (a verified email such as contractor+x@): the
    exclude still refuses it; a provider's address that is not one plain address is refused."""
    port = free_port()
    users = {
        "ctr": {"email": "contractor+idp@example.com", "email_verified": True},
        "dots": {"email": "contractor@example.com.", "email_verified": True},
        "twoat": {"email": "x@evil.com@example.com", "email_verified": True},
        "ok": {"email": "ok@example.com", "email_verified": True},
    }
    idp = idp_factory(port, users=users)
    d = latchd(login_config(port, [idp.idp_config("corp")], apps(port, ["corp"])), port=port)
    final, chain = oidc_login(Client(), f"http://staff.localhost:{port}/", "ok")
    assert final.status == 200 and final.url.startswith(f"http://staff.localhost:{port}/"), final
    final, chain = oidc_login(Client(), f"http://staff.localhost:{port}/", "ctr")
    assert final.status == 403 and "contractor+idp@example.com" in final.text, final
    for who in ("dots", "twoat"):
        cl = Client()
        final, chain = oidc_login(cl, f"http://staff.localhost:{port}/", who)
        assert final.status == 403 and "did not confirm an email address" in final.text, (who, final)
        assert not cl.get_cookie("auth.localhost", "CF_Authorization")
