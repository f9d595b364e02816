"""A real Chromium over HTTP/2 (ALPN h2 on a TLS listener): the login with an emailed code, the
protected app's page, each answer's protocol read by the page itself (nextHopProtocol)."""

import pytest

from browser import browser, console_code, otp_idp, person_app, login_config  # noqa: F401 (fixture)
from harness import free_port
from test_login_browser import echo_of, otp_in_browser
from test_tls import make_cert


@pytest.fixture
def gw(latchd, tmp_path):
    port = free_port()
    crt, key, _ = make_cert(tmp_path, "pin.localhost")
    cfg = login_config(port, [otp_idp()], [person_app("pin", "pin.localhost", port)])
    cfg["listen"] = [{"address": f"127.0.0.1:{port}", "tls": {"cert": str(crt), "key": str(key)}}]
    return latchd(cfg, port=port), port


@pytest.mark.timeout(180)
def test_chromium_logs_in_and_loads_the_app_over_h2(gw, browser):  # noqa: F811
    d, port = gw
    url = f"https://pin.localhost:{port}/inbox"
    r, _ = otp_in_browser(browser, url, "carol@example.com", lambda: console_code(d, "carol@example.com"))
    assert r["url"] == url, r
    e = echo_of(browser)
    assert e["headers"]["cf-access-authenticated-user-email"] == "carol@example.com"
    proto = browser.eval("performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert proto == "h2", proto
    # the requests the browser made reached the gateway as HTTP/2 streams and were logged
    assert d.wait_log(lambda l: l.get("path") == "/inbox" and l.get("status") == 200)
