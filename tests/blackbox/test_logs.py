"""The request log (SPEC.md §9): one JSON object per line with the listed fields, on a file or
stdout; every decision logged, bypass included; nothing secret ever logged; operational
messages on stderr."""

import json
import re
import time

import pytest

from harness import HEX_RE, LOG_FIELDS, allow_app, block_app, bypass_app, curl, get

SECRETS = ["Bearer-sekret-authz-1", "sekret-cookie-2", "sekret-cf-token-3", "sekret-client-4",
           "sekret-session-5"]


@pytest.fixture
def log_gw(latchd, origin):
    return latchd({"apps": [bypass_app("pub", ["pub.localhost"], policy="open-door"),
                            block_app("closed", ["closed.localhost"], policy="shut"),
                            allow_app("staff", ["staff.localhost"], origin=origin.url)]})


def test_fields_and_decisions(log_gw):
    d = log_gw
    body = b"z" * 1234
    r = get(d.port, "/a/./b?q=1", method="POST", body=body)
    assert r.status == 200
    rid = r.json()["request_id"]
    assert get(d.port, "/x", host="closed.localhost").status == 403
    assert get(d.port, "/y", host="staff.localhost").status == 401
    e1 = d.wait_log(lambda e: e.get("app") == "pub")
    e2 = d.wait_log(lambda e: e.get("app") == "closed")
    e3 = d.wait_log(lambda e: e.get("app") == "staff")
    for e in (e1, e2, e3):
        missing = [f for f in LOG_FIELDS if f not in e]
        assert not missing, f"missing fields {missing} in {e}"
        assert e["client_ip"] == "127.0.0.1"
        assert isinstance(e["status"], int) and isinstance(e["duration_us"], int)
        assert isinstance(e["bytes_in"], int) and isinstance(e["bytes_out"], int)
        assert e["duration_us"] >= 0
        assert HEX_RE.match(e["request_id"]), e
        t = e["time"]  # RFC 3339 text or a Unix timestamp: either must be "now"
        if isinstance(t, str):
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", t), t
        else:
            assert abs(float(t) / (1000 if t > 1e11 else 1) - time.time()) < 60, t
    assert e1["request_id"] == rid
    assert e1["method"] == "POST" and e1["path"] == "/a/b"
    assert e1["host"] in ("pub.localhost", f"pub.localhost:{d.port}")
    assert e1["decision"] == "bypass" and e1["policy"] == "open-door" and e1["status"] == 200
    assert e1["bytes_in"] >= 1234
    assert e1["bytes_out"] >= len(r.body)
    assert e2["decision"] == "block" and e2["policy"] == "shut" and e2["status"] == 403
    assert e3["decision"] == "login_required" and e3["status"] == 401
    assert len({e1["request_id"], e2["request_id"], e3["request_id"]}) == 3


def test_request_id_matches_origin(origin, latchd):
    d = latchd({"apps": [bypass_app("rec", ["rec.localhost"], origin=origin.url)]}, name="rec")
    assert get(d.port, "/rid", host="rec.localhost").status == 200
    e = d.wait_log(lambda e: e.get("path") == "/rid")
    assert origin.requests[-1]["hmap"]["x-request-id"] == e["request_id"]


def test_no_secrets_logged(log_gw):
    d = log_gw
    hdrs = [("Authorization", SECRETS[0]),
            ("Cookie", f"CF_Authorization={SECRETS[1]}; other={SECRETS[4]}"),
            ("cf-access-token", SECRETS[2]),
            ("CF-Access-Client-Id", "someid.access"),
            ("CF-Access-Client-Secret", SECRETS[3])]
    for host in ("pub.localhost", "closed.localhost", "staff.localhost"):
        get(d.port, "/s", host=host, headers=hdrs)
    d.wait_log(lambda e: e.get("app") == "staff")
    time.sleep(0.3)
    everything = "".join(p.read_text(errors="replace") for p in
                         (d.requests_log, d.stdout_path, d.stderr_path) if p.exists())
    if d.auth_log.exists():
        everything += d.auth_log.read_text(errors="replace")
    for s in SECRETS:
        assert s not in everything, f"secret {s!r} appears in the logs"


def test_every_line_is_json(log_gw):
    d = log_gw
    for i in range(20):
        get(d.port, f"/n/{i}", host=("pub.localhost", "closed.localhost")[i % 2])
    d.wait_log(lambda e: e.get("path") == "/n/19")
    # each worker writes its lines in one batch before it sleeps: another worker's line for an
    # earlier request may land a loop iteration later than this one
    deadline = time.monotonic() + 5
    while len(lines := d.requests_log.read_text().splitlines()) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lines) >= 20
    for ln in lines:
        obj = json.loads(ln)
        assert isinstance(obj, dict)


def test_default_requests_log_is_stdout(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])],
                "log": {"auth": "stderr"}})
    assert get(d.port, "/to-stdout").status == 200
    deadline = time.monotonic() + 5
    while True:
        objs = []
        for ln in d.stdout().splitlines():
            try:
                objs.append(json.loads(ln))
            except ValueError:
                pass
        if any(o.get("path") == "/to-stdout" for o in objs):
            break
        assert time.monotonic() < deadline, f"stdout: {d.stdout()!r}"
        time.sleep(0.05)
    # operational messages are not mixed into the request log stream
    for ln in d.stdout().splitlines():
        if ln.strip():
            json.loads(ln)


def test_concurrent_lines_not_interleaved(latchd):
    import concurrent.futures as cf
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])], "workers": 2})
    with cf.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: get(d.port, f"/c/{i}" + "x" * 500), range(300)))
    deadline = time.monotonic() + 10
    while len(d.log_lines()) < 300 and time.monotonic() < deadline:  # raises on a broken line
        time.sleep(0.1)
    entries = d.log_lines()
    paths = {e["path"] for e in entries}
    assert all(f"/c/{i}" + "x" * 500 in paths for i in range(300))


@pytest.mark.parametrize("host", ["pub.localhost", "rec.localhost"])
def test_bytes_in_and_out_count_bodies(latchd, origin, host):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"]),
                         bypass_app("rec", ["rec.localhost"], origin=origin.url)]})
    body = b"q" * 50_000
    r = get(d.port, "/count", host=host, method="POST", body=body)
    assert r.status == 200, r
    e = d.wait_log(lambda e: e.get("path") == "/count")
    assert e["bytes_in"] >= len(body), e
    assert e["bytes_out"] >= len(r.body), e


def test_operational_messages_on_stderr_not_in_request_log(latchd):
    d = latchd({"apps": [bypass_app("pub", ["pub.localhost"])]})
    assert get(d.port, "/op").status == 200
    d.wait_log(lambda e: e.get("path") == "/op")
    assert d.stderr().strip(), "no startup message on stderr"
    assert d.stdout().strip() == "", f"stdout should be empty with a request log file: {d.stdout()!r}"
    for e in d.log_lines():  # only request events in the request log
        assert "request_id" in e and "status" in e, e
