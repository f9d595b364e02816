#!/usr/bin/env python3
"""Makes the seeds of the OpenID Connect fuzz targets (fuzz/fuzz_oidc_*.c) from the tests' real
provider (tests/blackbox/idp/provider.mjs, oidc-provider): its discovery document, its JWKS and
an ID token of a real code flow with PKCE, then hostile variants of each. The targets check
against the constants written here (issuer, client_id, nonce) and fuzz/oidc_seed.h holds the
JWKS and token they verify with. Run from the repository root: python3 fuzz/seeds/oidc.py"""
import base64, hashlib, http.client, json, os, re, secrets, socket, subprocess, sys, tempfile, time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, parse_qs

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "http://idp.example.test:9443"
CLIENT = "latch"
SECRET = "latch-test-client-secret-42"
NONCE = "n-0S6_WzA2Mj"
REDIRECT = "https://auth.example.test/cdn-cgi/access/callback"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """HTTP to the provider under its issuer's name; cookies kept by name."""

    def __init__(self, port):
        self.port, self.cookies = port, {}

    def req(self, method, url, body=None, headers=None):
        u = urlsplit(url)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = {"Host": u.netloc or urlsplit(ISSUER).netloc, **(headers or {})}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        c.request(method, (u.path or "/") + (f"?{u.query}" if u.query else ""), body, h)
        r = c.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";")[0]
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def follow(self, url, until):
        for _ in range(10):
            if url.startswith(until):
                return url
            st, h, _ = self.req("GET", url)
            if st not in (302, 303):
                return url
            loc = h["location"]
            url = loc if "://" in loc else ISSUER + loc
        raise SystemExit("too many redirects")


def b64(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def main():
    tmp = Path(tempfile.mkdtemp())
    (tmp / "secret").write_text(SECRET + "\n")
    (tmp / "users.json").write_text(json.dumps({"alice": {
        "email": "alice@example.com", "email_verified": True, "name": "Alice Example",
        "groups": ["engineering", "staff"], "amr": ["pwd", "mfa"]}}))
    port = free_port()
    p = subprocess.Popen(["node", str(ROOT / "tests/blackbox/idp/provider.mjs"), "--port", str(port),
                          "--secret-file", str(tmp / "secret"), "--users", str(tmp / "users.json"),
                          "--redirect-uri", REDIRECT, "--log", str(tmp / "log"), "--issuer", ISSUER],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        c = Client(port)
        _, _, disc = c.req("GET", ISSUER + "/.well-known/openid-configuration")
        d = json.loads(disc)
        _, _, jwks = c.req("GET", d["jwks_uri"])
        verifier = b64(secrets.token_bytes(32))
        q = urlencode({"client_id": CLIENT, "response_type": "code", "redirect_uri": REDIRECT,
                       "scope": "openid email profile groups", "state": "s1", "nonce": NONCE,
                       "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()),
                       "code_challenge_method": "S256"})
        url = c.follow(d["authorization_endpoint"] + "?" + q, ISSUER + "/interaction/")
        uid = url.rsplit("/", 1)[1]
        st, h, _ = c.req("POST", f"{ISSUER}/interaction/{uid}/login", "login=alice",
                         {"Content-Type": "application/x-www-form-urlencoded"})
        url = c.follow(h["location"] if "://" in h["location"] else ISSUER + h["location"], REDIRECT)
        code = parse_qs(urlsplit(url).query)["code"][0]
        auth = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
        st, _, tok = c.req("POST", d["token_endpoint"],
                           urlencode({"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": REDIRECT, "code_verifier": verifier}),
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Authorization": "Basic " + auth})
        id_token = json.loads(tok)["id_token"]
    finally:
        p.terminate()
        p.wait(10)
    write(disc, jwks, id_token)


def put(name, seeds):
    d = ROOT / "fuzz" / "corpus" / name
    d.mkdir(parents=True, exist_ok=True)
    for k, v in seeds.items():
        (d / k).write_bytes(v if isinstance(v, bytes) else v.encode())


def write(disc, jwks, id_token):
    d = json.loads(disc)
    dump = lambda o: json.dumps(o, indent=None, separators=(",", ":"))
    seeds = {"provider": disc}
    for k, v in {"other-issuer": {"issuer": ISSUER + "-evil"}, "no-issuer": {"issuer": None},
                 "https-endpoints": {"jwks_uri": d["jwks_uri"].replace("http://", "https://")},
                 "ftp-token-endpoint": {"token_endpoint": "ftp://idp.example.test/token"},
                 "no-jwks-uri": {"jwks_uri": None}, "issuer-number": {"issuer": 42}}.items():
        o = dict(d)
        o.update(v)
        seeds[k] = dump({a: b for a, b in o.items() if b is not None})
    seeds["array"] = "[" + disc.decode() + "]"
    put("oidc_discovery", seeds)

    j = json.loads(jwks)
    key = j["keys"][0]
    seeds = {"provider": jwks}
    for k, v in {"use-enc": {"use": "enc"}, "alg-rs512": {"alg": "RS512"}, "no-kid": {"kid": None},
                 "short-n": {"n": key["n"][:40]}, "n-not-b64url": {"n": key["n"][:-4] + "+/=="},
                 "kty-oct": {"kty": "oct", "k": "c2VjcmV0"}}.items():
        o = dict(key)
        o.update(v)
        seeds[k] = dump({"keys": [{a: b for a, b in o.items() if b is not None}]})
    seeds["ec-p256"] = dump({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})
    seeds["ec-p384"] = dump({"keys": [{"kty": "EC", "crv": "P-384", "kid": "ec2", "x": "AA", "y": "AA"}]})
    seeds["two-keys"] = dump({"keys": [seeds and json.loads(seeds["ec-p256"])["keys"][0], key]})
    put("oidc_jwks", seeds)

    h, c, s = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    enc = lambda o: b64(dump(o).encode())
    seeds = {"provider": id_token}
    for k, v in {"other-aud": {"aud": "someone-else"}, "aud-array-no-azp": {"aud": [CLIENT, "x"]},
                 "aud-array-azp": {"aud": [CLIENT, "x"], "azp": CLIENT}, "no-sub": {"sub": None},
                 "wrong-nonce": {"nonce": "n-other"}, "exp-string": {"exp": str(claims["exp"])},
                 "nbf-future": {"nbf": claims["iat"] + 3600}, "other-iss": {"iss": ISSUER + "/x"}}.items():
        o = dict(claims)
        o.update(v)
        seeds["claims-" + k] = f"{h}.{enc({a: b for a, b in o.items() if b is not None})}.{s}"
    for k, v in {"alg-none": {"alg": "none"}, "alg-hs256": {"alg": "HS256"},
                 "crit": {"crit": ["exp"]}, "alg-es256": {"alg": "ES256"}}.items():
        o = dict(header)
        o.update(v)
        seeds["header-" + k] = f"{enc(o)}.{c}.{s}"
    seeds["two-dots"] = f"{h}.{c}"
    seeds["four-parts"] = f"{h}.{c}.{s}.x"
    dup = b64(dump(claims)[:-1].encode() + b',"sub":"x"}')
    seeds["duplicate-claim"] = f"{h}.{dup}.{s}"
    seeds["bad-signature"] = f"{h}.{c}.{s[:-6]}AAAAAA"
    put("oidc_id_token", seeds)

    (ROOT / "fuzz" / "oidc_seed.h").write_text(
        "/* Made by fuzz/seeds/oidc.py from the tests' OpenID provider: the constants the OIDC fuzz\n"
        " * targets check against, and a real JWKS and ID token they verify with. */\n"
        f"#define OIDC_SEED_ISSUER \"{ISSUER}\"\n"
        f"#define OIDC_SEED_CLIENT \"{CLIENT}\"\n"
        f"#define OIDC_SEED_NONCE \"{NONCE}\"\n"
        f"#define OIDC_SEED_URL \"{ISSUER}/.well-known/openid-configuration\"\n"
        f"#define OIDC_SEED_JWKS {json.dumps(jwks.decode())}\n"
        f"#define OIDC_SEED_ID_TOKEN \"{id_token}\"\n")
    print("claims:", claims, "header:", header)


if __name__ == "__main__":
    main()
