"""The one-time PIN's limits (issue 10): strangers cannot lock a person out of PIN sign-in by
asking codes for their address, and guessing stays bounded. Clients are told apart by the
address latchd establishes for them: trusted_proxies covers loopback, so each request's
X-Forwarded-For is its client, as behind a load balancer. Codes come from the console mailer
(latchd's log)."""

import re

import pytest

from browser import Client, console_code, form_fields, login_config, otp_idp, person_app
from harness import free_port

pytestmark = pytest.mark.timeout(120)

VICTIM = "vic@example.com"


@pytest.fixture
def gw(latchd):
    port = free_port()
    apps = [person_app("pin", "pin.localhost", port, allowed_idps=["email-code"])]
    d = latchd(login_config(port, [otp_idp()], apps, trusted_proxies=["127.0.0.0/8"]), port=port)

    class G:
        pass
    g = G()
    g.d, g.port = d, port
    g.auth = f"http://auth.localhost:{port}"
    g.app = f"http://pin.localhost:{port}/"
    return g


def xff(ip):
    return [("X-Forwarded-For", ip)]


def pins(g, email):
    return len(re.findall(r"one-time PIN for " + re.escape(email) + r" ", g.d.stderr()))


def new_flow(cl, g, ip):
    """A new sign-in in this browser: the PIN form's CSRF token."""
    r, chain = cl.follow(g.app, headers=xff(ip))
    assert r.status == 200 and "Sign in with your email" in r.text, (r, chain)
    return form_fields(r.text)["csrf"]


def ask(cl, g, csrf, email, ip):
    return cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "email": email}, headers=xff(ip))


def asked(r):
    """A code page (200), or a refusal that says when to come back (429)."""
    if r.status == 200:
        assert "Check your email" in r.text, r
        return True
    assert r.status == 429, r
    return False


def says_when(r):
    wait = int(r.header("retry-after"))
    assert 0 < wait <= 600, r.headers
    assert re.search(r"Try again in \d+ minutes? \(at \d\d:\d\d UTC\)", r.text), r.text
    return wait


def sign_in_with(cl, g, csrf, email, ip, after):
    code = console_code(g.d, email, after=after)
    r = cl.post(f"{g.auth}/cdn-cgi/access/otp", {"csrf": csrf, "code": code}, headers=xff(ip))
    assert r.status == 302 and "/cdn-cgi/access/authorized?grant=" in r.location, r
    final, chain = cl.follow(r.location, headers=xff(ip))
    assert final.status == 200, (final, chain)
    return r


def forget_session(cl):
    """The browser's sessions end (logout, expiry); what else it holds stays."""
    for key in [k for k in cl.jar if k[1] == "CF_Authorization"]:
        del cl.jar[key]


def stranger_flood(g, email, ips, per_ip):
    """Strangers ask codes for `email`, each request in a new sign-in (flow) of its own.
    Returns the answers."""
    out = []
    for ip in ips:
        for _ in range(per_ip):
            cl = Client()
            out.append(ask(cl, g, new_flow(cl, g, ip), email, ip))
    return out


def test_strangers_cannot_lock_a_person_out(gw):
    home = "198.51.100.7"
    # the person signed in with a PIN in this browser some day before (it is known now)
    laptop = Client()
    csrf = new_flow(laptop, gw, home)
    n = pins(gw, VICTIM)
    assert asked(ask(laptop, gw, csrf, VICTIM, home))
    sign_in_with(laptop, gw, csrf, VICTIM, home, n)
    forget_session(laptop)
    # on another browser she has just asked for a code, not typed yet
    phone = Client()
    phone_csrf = new_flow(phone, gw, home)
    n_phone = pins(gw, VICTIM)
    assert asked(ask(phone, gw, phone_csrf, VICTIM, home))
    console_code(gw.d, VICTIM, after=n_phone)

    # strangers ask codes for her address: from her own address (a shared NAT), from many
    # others, and with sub-addresses (the same mailbox)
    answers = stranger_flood(gw, VICTIM, [home], 6)
    answers += stranger_flood(gw, VICTIM, [f"203.0.113.{i}" for i in range(1, 7)], 5)
    answers += stranger_flood(gw, "vic+x@example.com", ["192.0.2.50"], 3)
    refused = [r for r in answers if not asked(r)]
    assert len(refused) >= 3, [r.status for r in answers]  # the ones beside her are stopped...

    # ...and she is not: the phone's code still works (its tries are its own)
    before = pins(gw, VICTIM)
    sign_in_with(phone, gw, phone_csrf, VICTIM, home, n_phone)
    # the laptop that signed in before gets a code and signs in, from the shared address too
    csrf = new_flow(laptop, gw, home)
    before = pins(gw, VICTIM)
    assert asked(ask(laptop, gw, csrf, VICTIM, home))
    sign_in_with(laptop, gw, csrf, VICTIM, home, before)
    assert laptop.get_cookie("pin.localhost", "CF_Authorization")
    for r in refused:  # (the strangers were told when to come back)
        says_when(r)

    # a browser she never used, on another address, gets its code however many strangers
    # asked: no budget of hers is theirs to spend (no ceiling per address alone)
    tablet = Client()
    forget_session(laptop)
    t_csrf = new_flow(tablet, gw, "198.51.100.8")
    n = pins(gw, VICTIM)
    assert asked(ask(tablet, gw, t_csrf, VICTIM, "198.51.100.8"))
    sign_in_with(tablet, gw, t_csrf, VICTIM, "198.51.100.8", n)
    assert tablet.get_cookie("pin.localhost", "CF_Authorization")


def test_known_browser_cannot_be_forged_or_reused_for_another_address(gw):
    # mallory signs in as himself: his browser is known for his address only
    mal = Client()
    csrf = new_flow(mal, gw, "192.0.2.9")
    n = pins(gw, "mal@example.com")
    assert asked(ask(mal, gw, csrf, "mal@example.com", "192.0.2.9"))
    sign_in_with(mal, gw, csrf, "mal@example.com", "192.0.2.9", n)
    known = mal.get_cookie("auth.localhost", "latch_pin")
    assert known and re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{32}", known)
    assert "mal" not in known
    forget_session(mal)
    # for the victim's address his browser is any stranger's: the per-client budget applies
    got = []
    for _ in range(7):
        c = new_flow(mal, gw, "192.0.2.9")
        got.append(asked(ask(mal, gw, c, VICTIM, "192.0.2.9")))
    assert got == [True] * 5 + [False] * 2, got
    # his address's budget from this client is spent by four more sign-ins elsewhere...
    for _ in range(4):
        x = Client()
        assert asked(ask(x, gw, new_flow(x, gw, "192.0.2.9"), "mal@example.com", "192.0.2.9"))
    # ...so a forged or altered cookie, which makes no known browser, is refused
    for value in ("0" * 32 + "." + "0" * 32, known[:-1] + ("0" if known[-1] != "0" else "1"),
                  known.split(".")[0], known + "00", known.split(".")[1] + "." + known.split(".")[0]):
        x = Client()
        x.set_cookie("auth.localhost", "latch_pin", value, "/cdn-cgi/access/")
        r = ask(x, gw, new_flow(x, gw, "192.0.2.9"), "mal@example.com", "192.0.2.9")
        assert not asked(r), (value, r)
        says_when(r)
    # while the genuine one has a budget of its own
    c = new_flow(mal, gw, "192.0.2.9")
    assert asked(ask(mal, gw, c, "mal@example.com", "192.0.2.9"))


def test_guessing_stays_bounded(gw):
    ip = "192.0.2.77"
    # codes per sign-in: a new code (five new tries) twice, then start again
    cl = Client()
    csrf = new_flow(cl, gw, ip)
    assert [asked(ask(cl, gw, csrf, "g1@example.com", ip)) for _ in range(3)] == [True, True, False]
    r = ask(cl, gw, csrf, "g1@example.com", ip)
    assert r.status == 429 and "Start again from the application" in r.text, r
    # codes per client and mailbox (sub-addresses are the same mailbox): 5, in any sign-ins
    got = [asked(ask(c, gw, new_flow(c, gw, ip), f"g2+{i}@example.com", ip))
           for i, c in enumerate(Client() for _ in range(6))]
    assert got == [True] * 5 + [False], got
    # an address that may not enter is counted alike: the answers never tell them apart
    other = "192.0.2.78"
    got = [asked(ask(c, gw, new_flow(c, gw, other), "intruder@evil.test", other))
           for c in (Client() for _ in range(6))]
    assert got == [True] * 5 + [False], got
    # codes per client, every address: 20
    busy = "192.0.2.79"
    got = [asked(ask(c, gw, new_flow(c, gw, busy), f"many{i}@example.com", busy))
           for i, c in enumerate(Client() for _ in range(21))]
    assert got == [True] * 20 + [False], got
    # IPv6 clients are counted by /64: another address of the same network is the same client
    v6 = [f"2001:db8:1:2::{i:x}" for i in range(1, 7)]
    got = [asked(ask(c, gw, new_flow(c, gw, a), "six@example.com", a))
           for a, c in zip(v6, (Client() for _ in range(6)))]
    assert got == [True] * 5 + [False], got
    # no ceiling per address alone (strangers would spend it): each client its own budget
    many = [f"203.0.113.{100 + i}" for i in range(12)]
    got = [asked(ask(c, gw, new_flow(c, gw, a), "ceil@example.com", a))
           for a, c in zip(many, (Client() for _ in range(12)))]
    assert got == [True] * 12, got
    # the limits are logged, never the codes
    text = gw.d.auth_log.read_text()
    assert text.count('"otp_rate_limited"') >= 6, text[-2000:]
