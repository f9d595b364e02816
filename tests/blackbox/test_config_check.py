"""`latchd check --config FILE` (SPEC.md §2): exit 0 when valid; otherwise one
`FILE:LINE:COL: message` line per error (all errors, not only the first) and exit 2."""

import re
import subprocess
import textwrap

import pytest

from harness import LATCHD, free_port, stop_pid


def check(path, timeout=20):
    p = subprocess.run([LATCHD, "check", "--config", str(path)], capture_output=True,
                       timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def error_lines(path, out):
    """(line, col, message) for every FILE:LINE:COL: line naming this file."""
    rx = re.compile(r"^" + re.escape(str(path)) + r":(\d+):(\d+): (.+)$")
    found = []
    for ln in out.splitlines():
        m = rx.match(ln.strip())
        if m:
            found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


def col_of(text, line_no, token):
    """1-based column of `token` on 1-based line `line_no` of text."""
    line = text.splitlines()[line_no - 1]
    i = line.index(token)
    return i + 1


def write(tmp_path, text, name="latch.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


VALID = textwrap.dedent("""\
    listen: [{{address: 127.0.0.1:{port}}}]
    workers: 2
    state_dir: {tmp}/state
    auth_domain: auth.localhost:{port}
    trusted_proxies: [10.0.0.0/8, "::1/128"]
    timeouts: {{header: 2s, idle: 1m30s, origin_response: 500ms}}
    log: {{requests: {tmp}/requests.log, auth: {tmp}/auth.log}}
    apps:
      - name: pub
        domains: [pub.localhost, "*.example.com", "api.localhost/admin/*"]
        origin: echo
        policies: [{{name: open, decision: bypass, include: [{{everyone: {{}}}}]}}]
      - name: up
        domains: [up.localhost]
        origin: http://127.0.0.1:9/base
        policies:
          - {{name: office, decision: bypass, include: [{{ip: 192.168.0.0/16}}]}}
          - {{name: rest, decision: block, include: [{{everyone: {{}}}}]}}
    """)


def test_valid_config_exits_0(tmp_path):
    p = write(tmp_path, VALID.format(port=free_port(), tmp=tmp_path))
    rc, out = check(p)
    assert rc == 0, out
    assert error_lines(p, out) == [], out


def test_unknown_key_line_and_column(tmp_path):
    text = VALID.format(port=free_port(), tmp=tmp_path).replace(
        "workers: 2\n", "workers: 2\nbogus_key: 1\n")
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert (3, 1) in [(l, c) for l, c, _ in errs], f"expected {p}:3:1 in:\n{out}"


MULTI = textwrap.dedent("""\
    listen: [{address: 127.0.0.1:8080}]
    workers: 2
    state_dir: /tmp/latch-check-state
    auth_domain: auth.localhost:8080
    trusted_proxies: [10.0.0.0/33]
    timeouts: {header: 10 parsecs}
    apps:
      - name: pub
        domains: [pub.localhost]
        origin: ftp://example.com
        policies:
          - name: open
            decision: maybe
            include: [{ip: 300.1.1.1/8}]
            colour: blue
      - name: pub
        domains: [other.localhost]
        origin: echo
        policies: [{name: x, decision: bypass, include: [{shoe_size: 42}]}]
    """)

# (line, acceptable columns: the key's or the value's, message hint)
MULTI_EXPECTED = [
    (5, ["10.0.0.0/33"], "CIDR /33"),
    (6, ["header", "10 parsecs"], "duration"),
    (10, ["origin", "ftp://"], "origin scheme"),
    (13, ["decision", "maybe"], "decision"),
    (14, ["ip", "300.1.1.1/8"], "ip selector"),
    (15, ["colour"], "unknown policy key"),
    (16, ["name", "pub"], "duplicate app name"),
    (19, ["shoe_size"], "unknown selector"),
]


def test_every_error_reported_with_line_and_column(tmp_path):
    p = write(tmp_path, MULTI)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert errs, f"no FILE:LINE:COL lines in:\n{out}"
    missing = []
    for line, tokens, hint in MULTI_EXPECTED:
        cols = {col_of(MULTI, line, t) for t in tokens}
        if not any(l == line and c in cols for l, c, _ in errs):
            missing.append(f"line {line} col in {sorted(cols)} ({hint})")
    assert not missing, "errors not reported:\n  " + "\n  ".join(missing) + f"\noutput:\n{out}"
    # every printed error line points inside the file
    nlines = len(MULTI.splitlines())
    for l, c, msg in errs:
        assert 1 <= l <= nlines + 1 and c >= 1 and msg.strip(), (l, c, msg)


@pytest.mark.parametrize("text", [
    "listen: [{address: 127.0.0.1:8080}\nworkers: 2\n",
    "listen:\n  - address: 127.0.0.1:8080\n state_dir: /x\n",
    "apps:\n  - name: \"unterminated\n",
    "listen: [{address: 127.0.0.1:8080}]\n\tworkers: 2\n",
], ids=["unclosed-flow", "bad-indent", "unterminated-quote", "tab-indent"])
def test_yaml_syntax_error(tmp_path, text):
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert errs, f"no {p}:LINE:COL: line in:\n{out}"
    assert all(1 <= l <= len(text.splitlines()) + 1 for l, _, _ in errs), out


def test_missing_listen_is_an_error(tmp_path):
    text = textwrap.dedent("""\
        state_dir: /tmp/latch-check-state
        auth_domain: auth.localhost:8080
        apps:
          - {name: pub, domains: [pub.localhost], origin: echo,
             policies: [{name: open, decision: bypass, include: [{everyone: {}}]}]}
        """)
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    assert error_lines(p, out), out
    assert "listen" in out, out


def test_daemon_refuses_to_start_with_bad_config(tmp_path):
    text = VALID.format(port=free_port(), tmp=tmp_path).replace("decision: bypass",
                                                                "decision: perhaps")
    p = write(tmp_path, text)
    proc = subprocess.Popen([LATCHD, "--config", str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        stop_pid(proc)
        pytest.fail("latchd kept running with an invalid config")
    assert proc.returncode != 0
    text_out = (out + err).decode(errors="replace")
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if "perhaps" in l)
    assert any(l == line for l, _, _ in error_lines(p, text_out)), text_out
