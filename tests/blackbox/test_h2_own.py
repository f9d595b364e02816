"""The gateway's own answers over HTTP/2: forms (read whole through the transport's read_all),
the CLI handoff's long poll (parked through `wait`: it holds only its stream, another stream of
the same connection is answered meanwhile), login refusals."""

import json

import pytest

from clikit import EMAIL, Handoff, cli_factory, gateway_config, otp_session, person_app  # noqa: F401 (fixture)
from h2kit import Client, get
from harness import curl, free_port


@pytest.fixture
def gw(latchd):
    port, h2c = free_port(), free_port()
    cfg = gateway_config(port, [person_app("api", "api.localhost", port)])
    cfg["listen"] = [{"address": f"127.0.0.1:{port}"}, {"address": f"127.0.0.1:{h2c}", "http2": "prior_knowledge"}]
    d = latchd(cfg, port=port, extra_ports=[h2c])
    d.h2c = h2c
    return d


@pytest.mark.timeout(120)
def test_long_poll_holds_only_its_stream(gw):
    host = f"api.localhost:{gw.port}"
    auth = f"auth.localhost:{gw.port}"
    h = Handoff(gw, host)
    _, proof = h.challenge()
    assert proof
    c = Client(gw.h2c)
    poll = c.request(get(auth, f"/cdn-cgi/access/transfer/{h.key}", extra=[("authorization", f"Latch-Proof {proof}")]))
    other = c.request(get(host, "/x", extra=[("accept", "application/json")]))
    st, _, body, _ = c.response(other)
    assert st == 401, (st, body)
    assert not c.ended(poll), "the long poll answered before there was anything to give"
    # the person confirms in a browser: the parked poll gets the box at once
    victim = otp_session(gw, EMAIL, host)
    page, _ = h.open(victim)
    assert h.confirm(victim, page).status == 200
    st, _, box, reset = c.response(poll, timeout=40)
    assert st == 200, (st, reset)
    plain = h.na.open(box, h.pk, h.sk)
    assert plain and json.loads(plain)["app_token"]
    c.close()


def test_form_read_whole_same_answer_as_http1(gw):
    auth = f"auth.localhost:{gw.port}"
    form = b"email=someone%40example.com&csrf=nope"
    h1 = curl(f"http://127.0.0.1:{gw.port}/cdn-cgi/access/otp", "-H", f"Host: {auth}", "-H", f"Origin: http://{auth}",
              "--data-binary", form.decode(), "-H", "Content-Type: application/x-www-form-urlencoded")
    c = Client(gw.h2c)
    sid = c.request(get(auth, "/cdn-cgi/access/otp", "POST", extra=[
        ("content-type", "application/x-www-form-urlencoded"), ("content-length", str(len(form))),
        ("origin", f"http://{auth}")]), body=None, end=False)
    for i in range(0, len(form), 7):  # in pieces: the endpoint waits for all of it
        c.conn.send_data(sid, form[i:i + 7], end_stream=i + 7 >= len(form))
        c.flush()
    st, headers, body, reset = c.response(sid)
    assert st == h1.status and st in (400, 403), (st, h1, body[:300])
    c.close()


def test_latch_curl_http2_passes_through(latchd, cli_factory, tmp_path):  # noqa: F811
    """`latch curl --http2 …` hands --http2 to curl untouched: the request reaches the gateway
    as an HTTP/2 stream (ALPN h2) with the stored token, and is admitted."""
    import authkit as ak
    from clikit import tls_gateway
    d, host, crt = tls_gateway(latchd, tmp_path)
    c = cli_factory(d)
    tok = ak.issue(d, "api", EMAIL)
    c.put_token(host, "api", ak.aud_of(d, host), tok, scheme="https")
    p = c.run("curl", "-sS", "--http2", "-w", "\\n%{http_version}", "--cacert", str(crt), f"https://{host}/h2",
              browser="forbidden", env={"LATCH_CA_BUNDLE": str(crt)})
    assert p.returncode == 0, (p.returncode, p.stderr)
    body, _, version = p.stdout.rpartition("\n")
    assert version == "2", p.stdout[-200:]
    e = json.loads(body)
    assert e["path"] == "/h2" and e["headers"]["cf-access-authenticated-user-email"] == EMAIL, e
