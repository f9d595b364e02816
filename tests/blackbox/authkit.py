"""Helpers for the authentication and authorization black-box tests (test_tokens.py,
test_policies.py, test_service_tokens.py, test_admin.py): running latchd's admin subcommands
against a test's daemon, reading its signing keys from state_dir, and forging hostile tokens
with independent libraries (python3-cryptography, python3-jwt), never with latch's own code."""

import base64
import hashlib
import hmac
import json
import re
import subprocess
import time
from pathlib import Path

import jwt
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness import LATCHD, get

CLI_TIMEOUT = 20


# --------------------------------------------------------------------------------------------
# admin subcommands

def cli(d, *args, check=False):
    """Runs `latchd <args> --config <d's file>`; returns CompletedProcess (text)."""
    p = subprocess.run([LATCHD, *args, "--config", str(d.config_path)], capture_output=True,
                       text=True, timeout=CLI_TIMEOUT)
    if check and p.returncode != 0:
        raise AssertionError(f"latchd {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


def issue(d, app, email, groups=(), amr=(), idp=None, ttl=None):
    """A token from `latchd token issue` (stdout is the token alone)."""
    args = ["token", "issue", "--app", app, "--email", email]
    for g in groups:
        args += ["--group", g]
    for a in amr:
        args += ["--amr", a]
    if idp:
        args += ["--idp", idp]
    if ttl:
        args += ["--ttl", ttl]
    p = cli(d, *args, check=True)
    tok = p.stdout.strip()
    assert tok.count(".") == 2, p.stdout
    return tok


def service_token_create(d, name, duration=None):
    """`latchd service-token create NAME`: returns (client_id, secret, stanza dict)."""
    args = ["service-token", "create", name]
    if duration:
        args += ["--duration", duration]
    p = cli(d, *args, check=True)
    out = p.stdout
    cid = sec = None
    for line in out.splitlines():
        if line.startswith("CF-Access-Client-Id:"):
            cid = line.split(":", 1)[1].strip()
        if line.startswith("CF-Access-Client-Secret:"):
            sec = line.split(":", 1)[1].strip()
    stanza_text = out[out.index("  - name:"):]
    stanza = yaml.safe_load(stanza_text)[0]
    stanza["expires"] = re.search(r"expires: (\S+)", stanza_text).group(1)  # keep it a string
    assert cid and sec and stanza["client_id"] == cid, out
    return cid, sec, stanza


# --------------------------------------------------------------------------------------------
# keys and app identifiers

def state_dir(d):
    return d.tmp / "state"


def certs(d, host="anything.localhost"):
    r = get(d.port, "/cdn-cgi/access/certs", host=host)
    assert r.status == 200, r
    return r.json()


def signing_kid(d):
    return certs(d)["public_cert"]["kid"]


def private_key(d, kid=None):
    """Our private signing key (PKCS#8 PEM in state_dir/keys/<kid>.pem); the signer by default."""
    kid = kid or signing_kid(d)
    pem = (state_dir(d) / "keys" / f"{kid}.pem").read_bytes()
    return serialization.load_pem_private_key(pem, password=None), kid


def app_info(d, host):
    r = get(d.port, "/cdn-cgi/access/app", host=host)
    assert r.status == 200, r
    return r.json()


def aud_of(d, host):
    return app_info(d, host)["aud"]


def issuer(d):
    return f"http://auth.localhost:{d.port}"


# --------------------------------------------------------------------------------------------
# forging

def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")))


def rs256(key, signing_input):
    if isinstance(signing_input, str):
        signing_input = signing_input.encode()
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def assemble(header, payload, key=None, sig=None):
    """header/payload: dicts (JSON-encoded) or str (already-encoded raw JSON text, used as is).
    Signs with `key` (RS256) unless `sig` (bytes or str) is given."""
    h = b64u(header) if isinstance(header, str) else b64u_json(header)
    p = b64u(payload) if isinstance(payload, str) else b64u_json(payload)
    si = f"{h}.{p}"
    if sig is None:
        sig = rs256(key, si) if key is not None else b""
    s = sig if isinstance(sig, str) else b64u(sig)
    return f"{si}.{s}"


def claims(d_, aud_, **over):
    """A valid person app-token claim set for d_; `over` replaces or (value None) drops claims."""
    now = int(time.time())
    c = {"aud": [aud_], "email": "bob@corp.com", "sub": "5d0c6a2e-0000-5000-8000-000000000001",
         "iss": issuer(d_), "iat": now, "nbf": now, "exp": now + 3600, "type": "app",
         "identity_nonce": "00112233445566778899aabbccddeeff", "idp": "admin",
         "groups": [], "amr": []}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def header(kid_, **over):
    h = {"alg": "RS256", "kid": kid_, "typ": "JWT"}
    for k, v in over.items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return h


def attacker_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key, kid):
    n = key.public_key().public_numbers()
    def enc(i):
        return b64u(i.to_bytes((i.bit_length() + 7) // 8, "big"))
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": enc(n.n), "e": enc(n.e)}


def hs256(header_obj, payload_obj, secret):
    si = f"{b64u_json(header_obj)}.{b64u_json(payload_obj)}"
    return f"{si}.{b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())}"


# --------------------------------------------------------------------------------------------
# requests

def with_token(d, host, token, path="/", how="header", extra=()):
    """One request presenting `token` (cf-access-token header, or the CF_Authorization cookie)."""
    hs = list(extra)
    if how == "header":
        hs.append(("cf-access-token", token))
    else:
        hs.append(("Cookie", f"CF_Authorization={token}"))
    return get(d.port, path, host=host, headers=hs)


def echo_headers(resp):
    assert resp.status == 200, resp
    return resp.json()["headers"]


def wait_until(pred, timeout=5.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def verify_with_jwks(d, token, aud, host="jwks.localhost"):
    """Verifies `token` the way an origin would: python3-jwt against our JWKS endpoint."""
    client = jwt.PyJWKClient(f"http://127.0.0.1:{d.port}/cdn-cgi/access/certs",
                             cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=aud, issuer=issuer(d),
                      options={"require": ["exp", "iat", "iss", "aud"]})


def person_app(name, domains, origin="echo", include=None, **extra):
    a = {"name": name, "domains": list(domains), "origin": origin,
         "policies": [{"name": "staff", "decision": "allow",
                       "include": include or [{"email_domain": "corp.com"}]}]}
    a.update(extra)
    return a


def offline(tmp, config):
    """A config written to tmp for admin subcommands that need no daemon (never started)."""
    from harness import Latchd
    return Latchd(tmp, config)


def make_service_token(tmp, name, duration=None):
    """(client_id, secret, stanza) from `latchd service-token create` on a scratch config."""
    o = offline(tmp / f"st-{name}", {"apps": [person_app("x", ["x.localhost"])]})
    return service_token_create(o, name, duration)
