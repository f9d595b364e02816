"""Service tokens against the real daemon (SPEC.md §2, §3.4, §3.5): created by `latchd
service-token create`, accepted with the right secret only and until they expire, the origin
getting an assertion minted for the service, a CF_Authorization cookie on apps that also admit
people, the single-header JSON form, and the service_token / any_valid_service_token selectors."""

import json
import time
from datetime import datetime, timezone

import jwt

import authkit as ak
from harness import get


def st_headers(cid, secret):
    return [("CF-Access-Client-Id", cid), ("CF-Access-Client-Secret", secret)]


def svc_app(name, host, *policies, **extra):
    a = {"name": name, "domains": [host], "origin": "echo", "policies": list(policies)}
    a.update(extra)
    return a


def P(name, decision, *include):
    return {"name": name, "decision": decision, "include": list(include)}


def test_create_output(tmp_path):
    t0 = time.time()
    cid, secret, stanza = ak.make_service_token(tmp_path, "deploy", duration="48h")
    assert cid.endswith(".access") and len(secret) >= 32
    assert stanza["name"] == "deploy" and len(stanza["secret_sha256"]) == 64
    import hashlib
    assert hashlib.sha256(secret.encode()).hexdigest() == stanza["secret_sha256"]
    exp = datetime.strptime(stanza["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(exp.timestamp() - (t0 + 48 * 3600)) < 5
    # the secret is stored nowhere
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    cid2, secret2, _ = ak.make_service_token(tmp_path / "again", "deploy")
    assert cid2 != cid and secret2 != secret


def test_service_tokens_accepted_refused_and_selected(latchd, tmp_path):
    ci = ak.make_service_token(tmp_path, "ci")
    other = ak.make_service_token(tmp_path, "other")
    old = ak.make_service_token(tmp_path, "old")
    old[2]["expires"] = "2020-01-01T00:00:00Z"
    apps = [
        svc_app("api", "api.localhost", P("ci", "service_auth", {"service_token": "ci"})),
        svc_app("any", "any.localhost", P("robots", "service_auth", {"any_valid_service_token": {}})),
        svc_app("people", "people.localhost", P("staff", "allow", {"everyone": {}})),
        svc_app("order", "order.localhost", P("closed", "block", {"everyone": {}}),
                P("ci", "service_auth", {"service_token": "ci"})),
    ]
    d = latchd({"service_tokens": [ci[2], other[2], old[2]], "apps": apps})
    cid, secret, _ = ci
    r = get(d.port, "/u1", host="api.localhost", headers=st_headers(cid, secret))
    h = ak.echo_headers(r)
    c = jwt.decode(h["cf-access-jwt-assertion"], options={"verify_signature": False})
    assert c["common_name"] == cid and c["sub"] == "" and c["type"] == "app"
    assert "cf-access-authenticated-user-email" not in h
    assert not any(k.startswith("cf-access-client") for k in h), h
    e = d.wait_log(lambda e: e["path"] == "/u1")
    assert (e["decision"], e["policy"], e["service_token"], e["email"]) == \
        ("service_auth", "ci", "ci", None)
    assert secret not in d.requests_log.read_text()
    # header names in any case
    r = get(d.port, "/", host="api.localhost",
            headers=[("cf-access-client-id", cid), ("CF-ACCESS-CLIENT-SECRET", secret)])
    assert r.status == 200, r

    def refused(host, headers, want_error=None):
        r = get(d.port, "/", host=host, headers=headers)
        assert r.status in (401, 403), (host, headers, r)
        if want_error:
            assert r.status == 401 and r.json().get("token_error") not in (None, "ok"), r
        return r

    refused("api.localhost", st_headers(cid, secret + "x"), True)           # wrong secret
    refused("api.localhost", st_headers(cid, secret[:-1]), True)
    refused("api.localhost", st_headers(cid, ""), None)
    refused("api.localhost", st_headers("0" * 32 + ".access", secret), True)  # unknown id
    refused("api.localhost", st_headers(other[0], secret), True)            # other id, our secret
    refused("api.localhost", [("CF-Access-Client-Id", cid)])                # id alone
    refused("api.localhost", [("CF-Access-Client-Secret", secret)])
    r = refused("api.localhost", st_headers(old[0], old[1]), True)          # expired
    assert r.json()["token_error"] == "expired", r.json()
    refused("api.localhost", st_headers(other[0], other[1]))               # valid, not named
    assert get(d.port, "/", host="any.localhost", headers=st_headers(*other[:2])).status == 200
    assert get(d.port, "/", host="any.localhost", headers=st_headers(cid, secret)).status == 200
    refused("any.localhost", st_headers(*old[:2]), True)
    # allow policies admit people only; service_auth comes before block
    assert get(d.port, "/", host="people.localhost", headers=st_headers(cid, secret)).status == 403
    assert get(d.port, "/", host="order.localhost", headers=st_headers(cid, secret)).status == 200
    assert get(d.port, "/", host="order.localhost", headers=st_headers(*other[:2])).status == 403
    # a person token does not satisfy service_auth with a service_token selector
    tok = ak.issue(d, "api", "bob@corp.com")
    assert get(d.port, "/", host="api.localhost", headers=[("cf-access-token", tok)]).status == 403


def test_cookie_follow_up_needs_no_secret(latchd, tmp_path):
    ci = ak.make_service_token(tmp_path, "ci")
    apps = [svc_app("mixed", "mixed.localhost", P("staff", "allow", {"email_domain": "corp.com"}),
                    P("ci", "service_auth", {"service_token": "ci"})),
            svc_app("machines", "machines.localhost", P("ci", "service_auth", {"service_token": "ci"}))]
    d = latchd({"service_tokens": [ci[2]], "apps": apps})
    r = get(d.port, "/first", host="mixed.localhost", headers=st_headers(*ci[:2]))
    assert r.status == 200, r
    sc = r.header("set-cookie")
    assert sc and sc.startswith("CF_Authorization="), r.headers
    attrs = [a.strip().lower() for a in sc.split(";")[1:]]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs, sc
    assert "secure" not in attrs  # plain HTTP on loopback (SPEC.md §5)
    value = sc.split(";")[0].split("=", 1)[1]
    assert value == r.json()["headers"]["cf-access-jwt-assertion"]
    # the follow-up carries the cookie only
    r2 = get(d.port, "/second", host="mixed.localhost",
             headers=[("Cookie", f"a=1; CF_Authorization={value}; b=2")])
    h = ak.echo_headers(r2)
    assert h["cf-access-jwt-assertion"] == value and h["cookie"] == "a=1; b=2"
    e = d.wait_log(lambda e: e["path"] == "/second")
    assert e["service_token"] == "ci" and e["decision"] == "service_auth" and e["email"] is None
    # the cookie is for this app only; an app with no allow policy gets no cookie
    assert get(d.port, "/", host="machines.localhost",
               headers=[("Cookie", f"CF_Authorization={value}")]).status == 401
    r3 = get(d.port, "/", host="machines.localhost", headers=st_headers(*ci[:2]))
    assert r3.status == 200 and r3.header("set-cookie") is None


def test_single_header_json_form(latchd, tmp_path, origin):
    ci = ak.make_service_token(tmp_path, "ci")
    apps = [svc_app("json", "json.localhost", P("ci", "service_auth", {"service_token": "ci"}),
                    read_service_tokens_from_header="authorization")]
    apps[0]["origin"] = origin.url
    d = latchd({"service_tokens": [ci[2]], "apps": apps})
    body = json.dumps({"cf-access-client-id": ci[0], "cf-access-client-secret": ci[1]})
    r = get(d.port, "/", host="json.localhost", headers=[("Authorization", body)])
    assert r.status == 200, r
    hm = {k.lower(): v for k, v in origin.requests[-1]["headers"]}
    assert "authorization" not in hm and "cf-access-jwt-assertion" in hm
    assert ci[1].encode() not in origin.received()
    n = len(origin.requests)
    bad = json.dumps({"cf-access-client-id": ci[0], "cf-access-client-secret": "nope"})
    dup = ('{"cf-access-client-id":"%s","cf-access-client-secret":"nope",'
           '"cf-access-client-secret":"%s"}' % (ci[0], ci[1]))
    for v in (bad, dup, "Bearer something", "{}", '{"cf-access-client-id": 1}'):
        r = get(d.port, "/", host="json.localhost", headers=[("Authorization", v)])
        assert r.status == 401, (v, r)
    assert len(origin.requests) == n
    # the two-header form still works on that app
    r = get(d.port, "/", host="json.localhost", headers=st_headers(*ci[:2]))
    assert r.status == 200, r
