"""Routing, normalization and the part-1 policies (SPEC.md §3, §4): the origin receives the
normalized path; the most specific app wins for every spelling of a path; host wildcards;
bypass/block with everyone/ip selectors; trusted_proxies and X-Forwarded-For; 401 JSON and the
302 to the login page for an app that needs identity."""

import json
import re
import urllib.parse

import pytest

from harness import (HEX_RE, RawConn, allow_app, block_app, bypass_app, curl, get)

NORMALIZATION = [
    ("/a/./b/../c", "/a/c"),
    ("/a//b///c", "/a/b/c"),
    ("//a", "/a"),
    ("/a/b/..", "/a/"),
    ("/a/b/.", "/a/b/"),
    ("/../a", "/a"),
    ("/../../../etc/passwd", "/etc/passwd"),
    ("/a/%2e%2e/b", "/b"),
    ("/a/%2E%2E/b", "/b"),
    ("/a/%2e/b", "/a/b"),
    ("/a/.%2e/b", "/b"),
    ("/%61%62%63", "/abc"),
    ("/%7euser", "/~user"),
    ("/a%2db%5fc%2Ed", "/a-b_c.d"),
    ("/a%3ab", "/a%3Ab"),
    ("/sp%20ace", "/sp%20ace"),
    ("/caf%c3%a9", "/caf%C3%A9"),
    ("/a%25b", "/a%25b"),
    ("/A/B", "/A/B"),
]


@pytest.fixture
def rec_gw(latchd, origin):
    return latchd({"apps": [bypass_app("rec", ["rec.localhost"], origin=origin.url)]})


@pytest.mark.parametrize("sent,want", NORMALIZATION, ids=[s for s, _ in NORMALIZATION])
def test_origin_receives_normalized_path(rec_gw, origin, sent, want):
    r = get(rec_gw.port, sent, host="rec.localhost")
    assert r.status == 200, r
    assert origin.requests[-1]["target"] == want


def test_query_kept_as_sent(rec_gw, origin):
    q = "x=%2F..%2f&y=/../a&z=%zz&w=%61"
    r = get(rec_gw.port, "/a/./b?" + q, host="rec.localhost")
    assert r.status == 200, r
    assert origin.requests[-1]["target"] == "/a/b?" + q


def test_origin_base_path_prefixed(latchd, origin):
    d = latchd({"apps": [bypass_app("based", ["based.localhost"], origin=origin.url + "/base")]})
    r = get(d.port, "/x/../y?q=1", host="based.localhost")
    assert r.status == 200, r
    assert origin.requests[-1]["target"] == "/base/y?q=1"


# --------------------------------------------------------------------------------------------
# most specific app wins

ADMIN_SPELLINGS = ["/admin/x", "/%61dmin/x", "/%61%64%6d%69%6e/x", "//admin/x", "/admin;x/x",
                   "/admin;/x", "/x/../admin/x", "/./admin/x", "/admin/./x", "/admin//x",
                   "/%2e/admin/x", "/x/%2e%2e/admin/x", "/x/..;y/admin/x", "///admin/x",
                   "/admin/x/", "/admin/"]


@pytest.fixture
def admin_gw(latchd, origin):
    return latchd({"apps": [
        bypass_app("api", ["api.localhost"], origin=origin.url),
        block_app("api-admin", ["api.localhost/admin/*"], origin=origin.url, policy="no-admin"),
        bypass_app("api-health", ["api.localhost/health"], origin=origin.url, policy="public"),
        block_app("api-wild", ["api.localhost/files*/secret"], origin=origin.url),
    ]})


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_admin_blocked_in_every_spelling(admin_gw, origin, path):
    r = get(admin_gw.port, path, host="api.localhost")
    assert r.status == 403, f"{path}: {r}"
    assert origin.received() == b"", f"{path} reached the origin"


@pytest.mark.parametrize("path,want", [
    ("/", "/"),
    ("/admin", "/admin"),          # "/admin/*" is below /admin, not /admin itself
    ("/adminx/y", "/adminx/y"),
    ("/ADMIN/x", "/ADMIN/x"),      # matching is case-sensitive (SPEC.md §4)
    ("/x/admin/y", "/x/admin/y"),
    ("/health", "/health"),
    ("/files/public", "/files/public"),
])
def test_less_specific_paths_bypass(admin_gw, origin, path, want):
    r = get(admin_gw.port, path, host="api.localhost")
    assert r.status == 200, f"{path}: {r}"
    assert origin.requests[-1]["target"] == want


@pytest.mark.parametrize("path", ["/files/secret", "/files1/secret", "/files/a/b/secret",
                                  "/files/./x/../secret", "/%66iles/secret"])
def test_inner_wildcard_path(admin_gw, origin, path):
    r = get(admin_gw.port, path, host="api.localhost")
    assert r.status == 403, f"{path}: {r}"
    assert origin.received() == b""


def test_admin_param_forwarded_as_judged(admin_gw, origin):
    """/admin;x/y is judged as /admin/y; the bypass app's sibling must not see it either."""
    r = get(admin_gw.port, "/public;x/y", host="api.localhost")
    assert r.status == 200, r
    assert origin.requests[-1]["target"].startswith("/public")


# --------------------------------------------------------------------------------------------
# host patterns

@pytest.fixture
def wild_gw(latchd):
    return latchd({"apps": [
        bypass_app("wild", ["*.example.com"]),
        block_app("www", ["www.example.com"]),
        block_app("partial", ["*test.example.com"]),
        bypass_app("port-pinned", ["pinned.localhost:1"]),
    ]})


def host_status(d, host):
    with RawConn(d.port) as c:
        c.send(f"GET /p HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        return c.read_response().status


@pytest.mark.parametrize("host,status", [
    ("a.example.com", 200),
    ("A.EXAMPLE.COM", 200),
    ("a.example.com.", 200),
    ("a.example.com:8443", 200),
    ("www.example.com", 403),         # exact beats wildcard
    ("footest.example.com", 403),     # longer literal (partly wild label) beats "*."
    ("example.com", 404),             # not the apex
    ("a.b.example.com", 404),         # exactly one label
    ("aexample.com", 404),
    ("a.example.com.evil", 404),
    ("pinned.localhost:1", 200),
    ("pinned.localhost", 404),        # a pattern with a port matches only that port
    ("pinned.localhost:2", 404),
])
def test_host_patterns(wild_gw, host, status):
    assert host_status(wild_gw, host) == status, host


def test_wildcard_with_curl(wild_gw):
    r = curl(f"http://a.example.com:{wild_gw.port}/w", "--resolve",
             f"a.example.com:{wild_gw.port}:127.0.0.1")
    assert r.status == 200, r
    assert r.json()["headers"]["host"] == f"a.example.com:{wild_gw.port}"


# --------------------------------------------------------------------------------------------
# block, ip selector, trusted proxies

OFFICE_APP = {"name": "office", "domains": ["office.localhost"], "policies": [
    {"name": "office-net", "decision": "bypass", "include": [{"ip": "10.9.9.0/24"}]},
    {"name": "others", "decision": "block", "include": [{"everyone": {}}]},
]}


def office_app(origin_url):
    a = json.loads(json.dumps(OFFICE_APP))
    a["origin"] = origin_url
    return a


def test_block_everyone_403(latchd, origin):
    d = latchd({"apps": [block_app("closed", ["closed.localhost"], origin=origin.url,
                                   policy="internal-policy-name-q7")]})
    r = curl(d.url("closed.localhost", "/"), "-H", "Accept: application/json")
    assert r.status == 403, r
    assert b"internal-policy-name-q7" not in r.body, "a refusal must not show policy internals"
    r = curl(d.url("closed.localhost", "/"), "-H", "Accept: text/html")
    assert r.status == 403, r
    assert b"internal-policy-name-q7" not in r.body
    assert origin.received() == b""
    e = d.wait_log(lambda e: e.get("status") == 403)
    assert e["decision"] == "block" and e["policy"] == "internal-policy-name-q7", e


def test_ip_selector_and_untrusted_xff(latchd, origin):
    d = latchd({"apps": [office_app(origin.url),
                         bypass_app("lo", ["lo.localhost"], origin=origin.url)],
                "trusted_proxies": []})
    # the peer (127.0.0.1) is not in the office net; a forged XFF is not believed
    assert get(d.port, "/", host="office.localhost").status == 403
    assert get(d.port, "/", host="office.localhost",
               headers=[("X-Forwarded-For", "10.9.9.9")]).status == 403
    assert origin.received() == b""
    r = get(d.port, "/", host="lo.localhost", headers=[("X-Forwarded-For", "10.9.9.9")])
    assert r.status == 200
    assert origin.requests[-1]["hmap"]["x-forwarded-for"] == "127.0.0.1"


def test_ip_selector_with_trusted_proxy(latchd, origin):
    d = latchd({"apps": [office_app(origin.url)], "trusted_proxies": ["127.0.0.1/32"]})
    assert get(d.port, "/", host="office.localhost").status == 403
    assert get(d.port, "/", host="office.localhost",
               headers=[("X-Forwarded-For", "10.8.8.8")]).status == 403
    r = get(d.port, "/in", host="office.localhost", headers=[("X-Forwarded-For", "10.9.9.9")])
    assert r.status == 200, r
    xff = origin.requests[-1]["hmap"]["x-forwarded-for"]
    assert [s.strip() for s in xff.split(",")] == ["10.9.9.9", "127.0.0.1"], xff
    # the client is the rightmost untrusted address: a forged leftmost entry does not help
    assert get(d.port, "/", host="office.localhost",
               headers=[("X-Forwarded-For", "10.9.9.9, 10.8.8.8")]).status == 403
    e = d.wait_log(lambda e: e.get("path") == "/in")
    assert e["client_ip"] == "10.9.9.9", e


def test_ip_selector_v6_and_not_trusted_peer(latchd, origin):
    d = latchd({"apps": [office_app(origin.url)], "trusted_proxies": ["192.0.2.0/24", "::1/128"]})
    # 127.0.0.1 is not a trusted proxy: XFF ignored
    assert get(d.port, "/", host="office.localhost",
               headers=[("X-Forwarded-For", "10.9.9.9")]).status == 403


# --------------------------------------------------------------------------------------------
# identity needed: 401 JSON or 302 to the login page

@pytest.fixture
def staff_gw(latchd, origin):
    return latchd({"apps": [allow_app("staff", ["staff.localhost"], origin=origin.url)]})


def test_401_json_for_api_clients(staff_gw, origin):
    d = staff_gw
    r = curl(d.url("staff.localhost", "/api/v1/things"), "-H", "Accept: application/json")
    assert r.status == 401, r
    assert "www-authenticate" in r.headers, r.headers
    assert "json" in r.headers.get("content-type", ""), r.headers
    j = r.json()
    assert j["error"] == "login_required"
    assert j["auth_domain"] == f"auth.localhost:{d.port}"
    assert re.fullmatch(r"[0-9a-f]{64}", j["aud"]), j
    assert j["login"].startswith(f"http://auth.localhost:{d.port}/cdn-cgi/access/login/"), j
    # a POST with an HTML Accept is not a navigation: still 401
    r = curl(d.url("staff.localhost", "/form"), "-H", "Accept: text/html", "-d", "a=b")
    assert r.status == 401, r
    # no Accept at all: 401
    r = get(d.port, "/x", host="staff.localhost")
    assert r.status == 401, r
    assert origin.received() == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_302_for_browser_navigation(staff_gw, origin, method):
    d = staff_gw
    r = get(d.port, "/some/page", host="staff.localhost", method=method,
            headers=[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
    assert r.status == 302, r
    loc = r.header("location")
    u = urllib.parse.urlsplit(loc)
    assert u.scheme == "http" and u.netloc == f"auth.localhost:{d.port}", loc
    assert u.path.startswith("/cdn-cgi/access/login/staff.localhost"), loc
    q = urllib.parse.parse_qs(u.query)
    assert q["redirect_url"] == ["/some/page"], loc
    assert origin.received() == b""


def test_aud_is_stable_across_restart(latchd, tmp_path):
    cfg = {"apps": [allow_app("staff", ["staff.localhost"])]}
    d = latchd(cfg, name="a")
    aud1 = json.loads(get(d.port, "/", host="staff.localhost").body)["aud"]
    assert d.stop() == 0
    d2 = latchd(d.config_path.read_text(), name="b", port=d.port, literal=True)
    aud2 = json.loads(get(d2.port, "/", host="staff.localhost").body)["aud"]
    assert aud1 == aud2
