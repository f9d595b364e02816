"""Hostile tokens against the real daemon (SPEC.md §3.4, §5): every forged, tampered, mis-addressed
or malformed token is refused with 401 (a `token_error` in the JSON) and the origin, a recording
one, never sees the request. Then spoofed identity headers (SPEC.md §3.5), and an origin
verifying Cf-Access-Jwt-Assertion with an independent JWT library against our JWKS."""

import base64
import json
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import authkit as ak
from harness import Origin, finish_shared, get, start_shared

HOST = "wiki.localhost"


def gate(latchd, origin, **extra_cfg):
    cfg = {"apps": [ak.person_app("wiki", [HOST], origin=origin.url)]}
    cfg.update(extra_cfg)
    return latchd(cfg)


# --------------------------------------------------------------------------------------------
# the forgeries: name -> (builder(d, aud, key, kid) -> token, expected token_error or None)

def _none(alg, with_sig):
    def build(d, aud, key, kid):
        h = {"alg": alg, "typ": "JWT"}
        if alg != "none":
            h["kid"] = kid
        tok = ak.assemble(h, ak.claims(d, aud), sig="")
        if with_sig:  # a genuine RS256 signature of ours over this very input
            si = tok[:-1]
            tok = si + "." + ak.b64u(ak.rs256(key, si))
        return tok
    return build


def _hs256(form):
    def build(d, aud, key, kid):
        pub = key.public_key()
        secret = (pub.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
                  if form == "pem" else
                  pub.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
                  if form == "der" else
                  pub.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.PKCS1))
        return ak.hs256(ak.header(kid, alg="HS256"), ak.claims(d, aud), secret)
    return build


def _claims(**over):
    def build(d, aud, key, kid):
        over2 = {k: (v(d, aud) if callable(v) else v) for k, v in over.items()}
        return ak.assemble(ak.header(kid), ak.claims(d, aud, **over2), key)
    return build


def _header(**over):
    def build(d, aud, key, kid):
        return ak.assemble(ak.header(kid, **over), ak.claims(d, aud), key)
    return build


def _foreign_key_our_kid(d, aud, key, kid):
    return ak.assemble(ak.header(kid), ak.claims(d, aud), ak.attacker_key())


def _jwk_injected(use_our_kid):
    def build(d, aud, key, kid):
        evil = ak.attacker_key()
        ekid = kid if use_our_kid else "e" * 32
        return ak.assemble(ak.header(ekid, jwk=ak.public_jwk(evil, ekid)), ak.claims(d, aud), evil)
    return build


def _url_injected(param):
    def build(d, aud, key, kid):
        evil = ak.attacker_key()
        h = ak.header(kid)
        h[param] = f"http://127.0.0.1:{d.port}/evil/jwks.json"
        return ak.assemble(h, ak.claims(d, aud), evil)
    return build


def _x5c_injected(d, aud, key, kid):
    import datetime
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    evil = ak.attacker_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kid)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(evil.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(evil, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return ak.assemble(ak.header(kid, x5c=[base64.b64encode(der).decode()]), ak.claims(d, aud), evil)


def _tampered(d, aud, key, kid):
    tok = ak.assemble(ak.header(kid), ak.claims(d, aud, email="mallory@evil.com"), key)
    h, _, s = tok.split(".")
    return ".".join([h, ak.b64u_json(ak.claims(d, aud, email="bob@corp.com")), s])


def _tampered_bit(d, aud, key, kid):
    tok = ak.assemble(ak.header(kid), ak.claims(d, aud), key)
    h, p, s = tok.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[-1] ^= 1
    return ".".join([h, p, ak.b64u(bytes(sig))])


def _stripped(keep_dot):
    def build(d, aud, key, kid):
        tok = ak.assemble(ak.header(kid), ak.claims(d, aud), key)
        return tok.rsplit(".", 1)[0] + ("." if keep_dot else "")
    return build


def _oversized(d, aud, key, kid):
    return ak.assemble(ak.header(kid), ak.claims(d, aud, pad="x" * 9000), key)


def _just_under_limit(d, aud, key, kid):
    """Control: a validly signed token of (nearly) 8192 bytes is not refused for its size."""
    base = ak.assemble(ak.header(kid), ak.claims(d, aud, pad=""), key)
    pad = (8192 - len(base)) * 3 // 4
    best = None
    for extra in range(pad - 8, pad + 8):
        tok = ak.assemble(ak.header(kid), ak.claims(d, aud, pad="x" * extra), key)
        if len(tok) <= 8192 and (best is None or len(tok) > len(best)):
            best = tok
    assert best and len(best) >= 8189, len(best or "")
    return best


def _raw_payload(text_fn):
    def build(d, aud, key, kid):
        return ak.assemble(ak.header(kid), text_fn(d, aud), key)
    return build


def _dup_email(d, aud):
    c = ak.claims(d, aud, email="mallory@evil.com")
    body = json.dumps(c, separators=(",", ":"))
    return body[:-1] + ',"email":"bob@corp.com"}'


def _dup_aud(d, aud):
    c = ak.claims(d, aud, aud=["0" * 64])
    body = json.dumps(c, separators=(",", ":"))
    return body[:-1] + ',"aud":["%s"]}' % aud


def _dup_header_alg(d, aud, key, kid):
    h = '{"alg":"none","kid":"%s","typ":"JWT","alg":"RS256"}' % kid
    return ak.assemble(h, ak.claims(d, aud), key)


def _b64_variant(kind):
    def build(d, aud, key, kid):
        payload = json.dumps(ak.claims(d, aud), separators=(",", ":")).encode()
        h = ak.b64u_json(ak.header(kid))
        if kind == "padded":
            p = base64.urlsafe_b64encode(payload).decode()
            if "=" not in p:  # make sure padding is there: lengthen the payload by a space
                p = base64.urlsafe_b64encode(payload + b" ").decode()
                if "=" not in p:
                    p = base64.urlsafe_b64encode(payload + b"  ").decode()
        elif kind == "std":
            p = base64.b64encode(payload).decode().rstrip("=")
            if "+" not in p and "/" not in p:
                p = p[:10] + "+/" + p[12:]  # at least make it a non-url alphabet spelling
        elif kind == "junk":
            p = ak.b64u(payload)[:20] + "!*$" + ak.b64u(payload)[23:]
        else:
            raise ValueError(kind)
        si = f"{h}.{p}"
        return f"{si}.{ak.b64u(ak.rs256(key, si))}"
    return build


def _static(text):
    def build(d, aud, key, kid):
        return text
    return build


CASES = {
    # alg none, any case, with and without a signature
    "alg-none-nosig": (_none("none", False), ("bad_header", "malformed")),
    "alg-None-nosig": (_none("None", False), ("bad_header", "malformed")),
    "alg-NONE-nosig": (_none("NONE", False), ("bad_header", "malformed")),
    "alg-none-sig": (_none("none", True), "bad_header"),
    "alg-None-sig": (_none("None", True), "bad_header"),
    "alg-nOnE-sig": (_none("nOnE", True), "bad_header"),
    "alg-missing": (_header(alg=None), "bad_header"),
    "alg-rs256-lowercase": (_header(alg="rs256"), "bad_header"),
    "alg-PS256": (_header(alg="PS256"), "bad_header"),
    # HMAC keyed with our public key
    "hs256-pubkey-pem": (_hs256("pem"), "bad_header"),
    "hs256-pubkey-der": (_hs256("der"), "bad_header"),
    "hs256-pubkey-pkcs1": (_hs256("pkcs1"), "bad_header"),
    # keys
    "kid-unknown": (_header(kid="0" * 32), "unknown_key"),
    "kid-missing": (_header(kid=None), "unknown_key"),
    "kid-path": (_header(kid="../../../../etc/passwd"), "unknown_key"),
    "kid-number": (_header(kid=1), "unknown_key"),
    "jwk-injected-own-kid": (_jwk_injected(False), "unknown_key"),
    "jwk-injected-our-kid": (_jwk_injected(True), "bad_signature"),
    "jku-injected": (_url_injected("jku"), "bad_signature"),
    "x5u-injected": (_url_injected("x5u"), "bad_signature"),
    "x5c-injected": (_x5c_injected, "bad_signature"),
    "foreign-key-our-kid": (_foreign_key_our_kid, "bad_signature"),
    # claims, validly signed with our own key
    "aud-wrong": (_claims(aud=["0" * 64]), "bad_audience"),
    "aud-missing": (_claims(aud=None), "bad_audience"),
    "aud-empty": (_claims(aud=[]), "bad_audience"),
    "iss-wrong-host": (_claims(iss="http://evil.localhost"), "bad_issuer"),
    "iss-wrong-scheme": (_claims(iss=lambda d, a: ak.issuer(d).replace("http:", "https:")), "bad_issuer"),
    "iss-missing": (_claims(iss=None), "bad_issuer"),
    "type-org": (_claims(type="org"), "bad_type"),
    "type-missing": (_claims(type=None), "bad_type"),
    "expired": (_claims(iat=lambda d, a: int(time.time()) - 7200,
                        nbf=lambda d, a: int(time.time()) - 7200,
                        exp=lambda d, a: int(time.time()) - 90), "expired"),
    "expired-long-ago": (_claims(exp=1), "expired"),
    "not-yet-valid": (_claims(nbf=lambda d, a: int(time.time()) + 120), "not_yet_valid"),
    "exp-missing": (_claims(exp=None), "bad_claims"),
    "exp-string": (_claims(exp=lambda d, a: str(int(time.time()) + 3600)), "bad_claims"),
    "exp-null": (_claims(exp=json.loads("null")), "bad_claims"),
    "exp-bool": (_claims(exp=True), "bad_claims"),
    "nbf-string": (_claims(nbf=lambda d, a: str(int(time.time()))), "bad_claims"),
    "iat-missing": (_claims(iat=None), "bad_claims"),
    "email-not-string": (_claims(email=["bob@corp.com"]), "bad_claims"),
    "aud-not-strings": (_claims(aud=lambda d, a: [1, a]), "bad_claims"),
    # integrity
    "payload-tampered": (_tampered, "bad_signature"),
    "signature-bitflip": (_tampered_bit, "bad_signature"),
    "signature-stripped": (_stripped(False), "malformed"),
    "signature-empty": (_stripped(True), ("malformed", "bad_signature")),
    "crit-unknown": (_header(crit=["exp"], exp=1), "bad_header"),
    "crit-empty": (_header(crit=[]), "bad_header"),
    "typ-not-jwt": (_header(typ="at+jwt"), "bad_header"),
    # size and form
    "oversized": (_oversized, "too_large"),
    "b64-padded": (_b64_variant("padded"), "malformed"),
    "b64-std-alphabet": (_b64_variant("std"), "malformed"),
    "b64-junk": (_b64_variant("junk"), "malformed"),
    "json-not-json": (_raw_payload(lambda d, a: "{not json"), "malformed"),
    "json-array": (_raw_payload(lambda d, a: json.dumps([ak.claims(d, a)])), "malformed"),
    "json-trailing": (_raw_payload(lambda d, a: json.dumps(ak.claims(d, a)) + "x"), "malformed"),
    "dots-extra": (lambda d, a, k, kid: ak.assemble(ak.header(kid), ak.claims(d, a), k) + ".x", "malformed"),
    "dots-only": (_static(".."), "malformed"),
    "dots-four": (_static("a.b.c.d"), "malformed"),
    "empty-parts": (lambda d, a, k, kid: "." + ak.assemble(ak.header(kid), ak.claims(d, a), k).split(".", 1)[1], "malformed"),
    "not-a-token": (_static("hello"), "malformed"),
    "dup-claim-email": (_raw_payload(_dup_email), "malformed"),
    "dup-claim-aud": (_raw_payload(_dup_aud), "malformed"),
    "dup-header-alg": (_dup_header_alg, "malformed"),
}


def _assert_refused(d, origin, tok, expected, how="header", statuses=(401,)):
    r = ak.with_token(d, HOST, tok, path="/secret", how=how)
    assert r.status in statuses, (r, tok[:200])
    if r.status == 401:
        body = r.json()
        assert body["error"] == "login_required", body
        assert body.get("token_error") not in (None, "ok"), body
        if expected:
            want = (expected,) if isinstance(expected, str) else expected
            assert body["token_error"] in want, body
    # the origin never saw it, and the log says so
    assert origin.requests == [], origin.requests
    rid = r.header("x-request-id")
    e = d.wait_log(lambda e: e["path"] == "/secret" and e["status"] == r.status and
                   (rid is None or e["request_id"] == rid))
    assert e["email"] is None and e["decision"] in ("login_required", "deny"), e
    return r


@pytest.fixture(scope="module")
def shared(module_tmp):
    """One daemon and one recording origin for the whole forgery table (each case checks that
    the origin's request count did not move)."""
    o = Origin()
    d = start_shared(module_tmp / "latchd", {"apps": [ak.person_app("wiki", [HOST], origin=o.url)]})
    key, kid = ak.private_key(d)
    yield d, o, ak.aud_of(d, HOST), key, kid
    finish_shared(d)
    o.close()


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_token_refused(shared, case):
    d, origin, aud, key, kid = shared
    build, expected = CASES[case]
    tok = build(d, aud, key, kid)
    _assert_refused(d, origin, tok, expected, how="header")
    # the same token as the CF_Authorization cookie (where the cookie syntax can carry it)
    if tok and all(c not in tok for c in ';, "\\'):
        _assert_refused(d, origin, tok, expected, how="cookie")


def test_controls_valid_tokens_admitted(latchd, origin):
    """The forgery machinery itself is right: the same claims, honestly signed, are admitted,
    also within the 60 s leeway either side, and at exactly 8 KiB."""
    d = gate(latchd, origin)
    aud = ak.aud_of(d, HOST)
    key, kid = ak.private_key(d)
    now = int(time.time())
    good = [
        ak.assemble(ak.header(kid), ak.claims(d, aud), key),
        ak.assemble(ak.header(kid, typ=None), ak.claims(d, aud), key),          # typ optional
        ak.assemble(ak.header(kid), ak.claims(d, aud, nbf=None), key),          # nbf optional
        ak.assemble(ak.header(kid), ak.claims(d, aud, exp=now - 30), key),      # leeway
        ak.assemble(ak.header(kid), ak.claims(d, aud, nbf=now + 30), key),      # leeway
        ak.assemble(ak.header(kid), ak.claims(d, aud, aud=["0" * 64, aud]), key),
        _just_under_limit(d, aud, key, kid),
        jwt.encode(ak.claims(d, aud), key, algorithm="RS256", headers={"kid": kid}),
    ]
    for i, tok in enumerate(good):
        r = ak.with_token(d, HOST, tok, path=f"/ok{i}")
        assert r.status == 200, (i, r)
    assert len(origin.requests) == len(good)
    r = ak.with_token(d, HOST, good[0], path="/cookie", how="cookie")
    assert r.status == 200, r


def test_email_with_two_ats_never_matches_domain(latchd, origin):
    """a@evil.com@corp.com is not an address at corp.com: refused as a token, and never
    admitted by an email_domain policy (also via `token issue`, which refuses to mint it)."""
    d = gate(latchd, origin)
    aud = ak.aud_of(d, HOST)
    key, kid = ak.private_key(d)
    for email in ("a@evil.com@corp.com", "a@evil.com@CORP.COM", "@corp.com", "a@", "a b@corp.com",
                  "a@corp.com\n"):
        tok = ak.assemble(ak.header(kid), ak.claims(d, aud, email=email), key)
        _assert_refused(d, origin, tok, None, statuses=(401, 403))
    p = ak.cli(d, "token", "issue", "--app", "wiki", "--email", "a@evil.com@corp.com")
    assert p.returncode != 0 and p.stdout.strip() == "", p


def test_token_for_other_app_refused(latchd, origin):
    """A token minted for app A (its AUD) is refused by app B, both ways in."""
    cfg = {"apps": [ak.person_app("wiki", [HOST], origin=origin.url),
                    ak.person_app("other", ["other.localhost"], origin=origin.url)]}
    d = latchd(cfg)
    tok = ak.issue(d, "other", "bob@corp.com")
    assert ak.with_token(d, "other.localhost", tok).status == 200
    n = len(origin.requests)
    for how in ("header", "cookie"):
        r = ak.with_token(d, HOST, tok, how=how)
        assert r.status == 401 and r.json()["token_error"] == "bad_audience", r
    assert len(origin.requests) == n


def test_refused_token_does_not_fall_back(latchd, origin):
    """A bad cf-access-token header is not rescued by a good cookie (the first source present
    decides, SPEC.md §3.4), and garbage service-token headers do not fall through either."""
    d = gate(latchd, origin)
    good = ak.issue(d, "wiki", "bob@corp.com")
    r = get(d.port, "/", host=HOST, headers=[("cf-access-token", "x.y.z"),
                                              ("Cookie", f"CF_Authorization={good}")])
    assert r.status == 401, r
    r = get(d.port, "/", host=HOST, headers=[("CF-Access-Client-Id", "nope.access"),
                                              ("CF-Access-Client-Secret", "nope"),
                                              ("cf-access-token", good)])
    assert r.status == 401, r
    assert origin.requests == []


# --------------------------------------------------------------------------------------------
# spoofing (SPEC.md §3.5)

SPOOF_NAMES = ["Cf-Access-Jwt-Assertion", "CF-ACCESS-JWT-ASSERTION", "cf-access-jwt-assertion",
               "Cf_Access_Jwt_Assertion", "CF_ACCESS_JWT_ASSERTION", "cf-access_jwt_assertion",
               "Cf-Access-Authenticated-User-Email", "CF-ACCESS-AUTHENTICATED-USER-EMAIL",
               "Cf_Access_Authenticated_User_Email", "cf_access_authenticated_user_email",
               "Cf-Access-Whatever", "CF_ACCESS_CLIENT_ID_EXTRA"]


def _cf_headers(req):
    return [(k, v) for k, v in req["headers"]
            if k.lower().replace("_", "-").startswith("cf-access")]


def test_forged_identity_headers_never_reach_origin(latchd, origin):
    cfg = {"apps": [ak.person_app("wiki", [HOST], origin=origin.url),
                    {"name": "pub", "domains": ["pub.localhost"], "origin": origin.url,
                     "policies": [{"name": "open", "decision": "bypass",
                                   "include": [{"everyone": {}}]}]}]}
    d = latchd(cfg)
    tok = ak.issue(d, "wiki", "bob@corp.com")
    forged = [(n, "ceo@corp.com" if "mail" in n.lower() else "forged.jwt.value") for n in SPOOF_NAMES]
    # with a valid token: exactly our two identity headers, with our values
    r = get(d.port, "/", host=HOST, headers=forged + [("cf-access-token", tok)])
    assert r.status == 200, r
    req = origin.requests[-1]
    cf = _cf_headers(req)
    assert sorted(k.lower() for k, _ in cf) == ["cf-access-authenticated-user-email",
                                                "cf-access-jwt-assertion"], cf
    assert dict((k.lower(), v) for k, v in cf) == {
        "cf-access-authenticated-user-email": "bob@corp.com", "cf-access-jwt-assertion": tok}
    assert "ceo@corp.com" not in req["target"] and b"ceo@corp.com" not in origin.received()
    # a bypass app: no identity at all, and none of the forged ones
    r = get(d.port, "/", host="pub.localhost", headers=forged)
    assert r.status == 200, r
    assert _cf_headers(origin.requests[-1]) == []
    # forged headers alone never authenticate
    n = len(origin.requests)
    r = get(d.port, "/", host=HOST, headers=forged)
    assert r.status == 401, r
    assert len(origin.requests) == n
    assert b"forged.jwt.value" not in origin.received()


def test_credentials_not_forwarded_other_headers_are(latchd, origin):
    d = gate(latchd, origin)
    tok = ak.issue(d, "wiki", "bob@corp.com")
    r = get(d.port, "/", host=HOST, headers=[
        ("Cookie", f"theme=dark; CF_Authorization={tok}; lang=en"),
        ("Authorization", "Bearer api-key-123"), ("X-Custom", "kept")])
    assert r.status == 200, r
    req = origin.requests[-1]
    hm = {k.lower(): v for k, v in req["headers"]}
    assert hm["authorization"] == "Bearer api-key-123"
    assert hm["x-custom"] == "kept"
    assert "CF_Authorization" not in hm.get("cookie", "")
    assert "theme=dark" in hm["cookie"] and "lang=en" in hm["cookie"]
    assert hm["cf-access-jwt-assertion"] == tok
    r = get(d.port, "/", host=HOST, headers=[("cf-access-token", tok)])
    assert r.status == 200
    hm = {k.lower(): v for k, v in origin.requests[-1]["headers"]}
    assert "cf-access-token" not in hm
    raw = origin.received()
    assert raw.count(tok.encode()) == 2  # once per request, as the assertion only


# --------------------------------------------------------------------------------------------
# the origin verifies what it gets with an independent library (SPEC.md §5)

def test_origin_verifies_person_assertion_with_jwks(latchd):
    cfg = {"apps": [ak.person_app("wiki", [HOST])]}
    d = latchd(cfg)
    tok = ak.issue(d, "wiki", "bob@corp.com", groups=["eng"], amr=["mfa"])
    r = ak.with_token(d, HOST, tok)
    h = ak.echo_headers(r)
    assertion = h["cf-access-jwt-assertion"]
    aud = ak.aud_of(d, HOST)
    # the 401 answer names the same AUD
    assert get(d.port, "/", host=HOST).json()["aud"] == aud
    c = ak.verify_with_jwks(d, assertion, aud)
    assert c["email"] == "bob@corp.com" == h["cf-access-authenticated-user-email"]
    assert c["type"] == "app" and c["aud"] == [aud] and c["groups"] == ["eng"]
    assert c["amr"] == ["mfa"] and c["sub"] and c["iss"] == ak.issuer(d)
    assert c["nbf"] <= c["iat"] + 0 <= c["exp"] and "identity_nonce" in c
    hdr = jwt.get_unverified_header(assertion)
    assert hdr["alg"] == "RS256" and hdr["typ"] == "JWT" and len(hdr["kid"]) == 32
    # the JWKS shape of SPEC.md §5, and the certificate form verifies too
    doc = ak.certs(d, host=HOST)
    assert doc == ak.certs(d, host=f"auth.localhost:{d.port}")
    for k in doc["keys"]:
        assert k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig"
    assert doc["public_cert"]["kid"] == hdr["kid"]
    assert {c_["kid"] for c_ in doc["public_certs"]} == {k["kid"] for k in doc["keys"]}
    cert = x509.load_pem_x509_certificate(doc["public_cert"]["cert"].encode())
    jwt.decode(assertion, cert.public_key(), algorithms=["RS256"], audience=aud)
    # and the library refuses it for another audience
    with pytest.raises(jwt.InvalidAudienceError):
        ak.verify_with_jwks(d, assertion, "0" * 64)


def test_origin_verifies_service_token_assertion_with_jwks(latchd, tmp_path):
    cid, secret, stanza = ak.make_service_token(tmp_path, "ci")
    cfg = {"service_tokens": [stanza],
           "apps": [{"name": "api", "domains": ["api.localhost"], "origin": "echo",
                     "policies": [{"name": "ci", "decision": "service_auth",
                                   "include": [{"service_token": "ci"}]}]}]}
    d = latchd(cfg)
    r = get(d.port, "/", host="api.localhost",
            headers=[("CF-Access-Client-Id", cid), ("CF-Access-Client-Secret", secret)])
    h = ak.echo_headers(r)
    assert "cf-access-authenticated-user-email" not in h
    assert "cf-access-client-secret" not in h and "cf-access-client-id" not in h
    aud = ak.aud_of(d, "api.localhost")
    c = ak.verify_with_jwks(d, h["cf-access-jwt-assertion"], aud)
    assert c["sub"] == "" and c["common_name"] == cid and c["type"] == "app"
    assert "email" not in c


@pytest.mark.parametrize("case,cause", [("expired", "expired"), ("aud-wrong", "bad_audience"),
                                        ("signature-bitflip", "bad_signature")])
def test_identity_endpoints_log_why_a_token_was_refused(shared, case, cause):
    """get-identity and logout answer a refused token as SPEC.md says (401; signed out anyway),
    and the auth log says why: expired, another audience, a forged signature… not one cause for
    all (issue 12)."""
    d, origin, aud, key, kid = shared
    tok = CASES[case][0](d, aud, key, kid)
    for path, event, statuses in (("/cdn-cgi/access/get-identity", "get_identity", (401,)),
                                  ("/cdn-cgi/access/logout", "logout", (200, 302))):
        r = ak.with_token(d, HOST, tok, path=path, extra=[("Accept", "application/json")])
        assert r.status in statuses, r
        if event == "get_identity":
            assert r.json() == {"error": "not_authenticated"}, r.json()
        e = d.wait_log(lambda e: e.get("event") == event and e.get("reason") == cause, path=d.auth_log)
        assert e["allowed"] is False and e["email"] is None and e["app"] == "wiki", e
