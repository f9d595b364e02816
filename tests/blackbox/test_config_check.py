"""`latchd check --config FILE` (SPEC.md §2): exit 0 when valid; otherwise one
`FILE:LINE:COL: message` line per error (all errors, not only the first) and exit 2."""

import re
import subprocess
import textwrap

import pytest

from harness import LATCHD, ROOT, free_port, materialize, stop_pid
from test_tls import make_cert


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
    assert proc.returncode == 2, (out + err).decode(errors="replace")  # latchd(8): bad configuration
    text_out = (out + err).decode(errors="replace")
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if "perhaps" in l)
    assert any(l == line for l, _, _ in error_lines(p, text_out)), text_out


# --------------------------------------------------------------------------------------------
# check loads every file the configuration names, as the daemon does, and says the same


def daemon(path, timeout=20):
    """latchd run on the configuration: (exit status, stdout + stderr); it must exit."""
    proc = subprocess.Popen([LATCHD, "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_pid(proc)
        pytest.fail("latchd started with a configuration that check refuses")
    return proc.returncode, (out + err).decode(errors="replace")


def positioned(path, out):
    """The FILE:LINE:COL: lines naming this file, as printed."""
    return sorted(l.strip() for l in out.splitlines() if l.startswith(f"{path}:"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    a = make_cert(d, "a.localhost")
    b = make_cert(d, "b.localhost")
    enc = d / "encrypted-key.pem"
    subprocess.run(["openssl", "genrsa", "-aes128", "-passout", "pass:secret", "-out", str(enc),
                    "2048"], check=True, capture_output=True, timeout=60)
    junk = d / "junk.pem"
    junk.write_text("not a PEM file\n")
    empty = d / "empty"
    empty.write_text("")
    secret = d / "secret"
    secret.write_text("an-oidc-client-secret\n")
    return {"cert": a[0], "key": a[1], "other_key": b[1], "encrypted": enc, "junk": junk,
            "empty": empty, "secret": secret, "dir": d}


def test_single_node_example_check_and_daemon_agree(tmp_path):
    """examples/single-node.yaml without the files it names: check refuses it (it said "ok",
    and the daemon then exited 1 on the certificate), naming each key that names a missing
    file; the daemon refuses it with the very same lines and exit status 2, before it creates
    state_dir."""
    ex = (ROOT / "examples" / "single-node.yaml").read_text()
    text = materialize(ex, tmp_path, None, make_files=False)  # nothing made under tmp_path
    text = text.replace("0.0.0.0:443", f"127.0.0.1:{free_port()}").replace(
        '"[::]:443"', f'"127.0.0.1:{free_port()}"')
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    lines = text.splitlines()
    expected = set()
    for no, line in enumerate(lines, 1):
        for key in ("cert", "key", "client_secret_file", "ca_file"):
            for m in re.finditer(rf"\b{key}: (\S+?)[ ,}}]", line + " "):
                expected.add((no, m.start(1) + 1, key, m.group(1)))
    assert len(expected) == 8, expected  # 2 certificates, 2 keys, a client secret, 3 CA files
    for no, col, key, path in expected:
        assert (no, col, f"'{key}': cannot read {path}: No such file or directory") in errs, (
            f"{key} at {no}:{col} not reported:\n{out}")
    assert not (tmp_path / "var" / "lib" / "latch").exists(), "check created state_dir"
    # the daemon: the same error lines, exit 2, and nothing made
    drc, dout = daemon(p)
    assert drc == 2, dout
    assert [l for l in positioned(p, dout) if ": warning: " not in l] == \
        [l for l in positioned(p, out) if ": warning: " not in l], (out, dout)
    assert not (tmp_path / "var" / "lib" / "latch").exists(), "the daemon touched state_dir"
    # with the files it names, the same example checks ok (test_service.py runs it as is)


TLS_CFG = textwrap.dedent("""\
    listen:
      - address: 127.0.0.1:{port}
        tls: {{ cert: {cert}, key: {key}, client_ca: {client_ca} }}
    state_dir: {tmp}/state
    auth_domain: auth.localhost:{port}
    log: {{ requests: {tmp}/requests.log, auth: {tmp}/auth.log }}
    identity_providers:
      - {{ name: corp, type: oidc, issuer: "http://127.0.0.1:9", client_id: latch, client_secret_file: {secret} }}
    apps:
      - name: api
        domains: [api.localhost]
        origin: https://127.0.0.1:9
        origin_tls: {{ ca_file: {ca_file} }}
        policies: [{{ name: staff, decision: allow, include: [{{ email_domain: example.com }}] }}]
    """)


# (the key whose file is bad, what it names, the words of the error)
BAD_FILES = [
    ("cert", "junk", r"'cert': {path} holds no PEM certificate \(no start line\)"),
    ("cert", "dir", r"'cert': cannot read {path}: Is a directory"),
    ("cert", "missing", r"'cert': cannot read {path}: No such file or directory"),
    ("key", "other_key", r"'key': {path} is not the private key of the certificate in .*a\.localhost\.pem"),
    ("key", "encrypted", r"'key': {path} holds no unencrypted PEM private key"),
    ("key", "junk", r"'key': {path} holds no unencrypted PEM private key"),
    ("client_ca", "junk", r"'client_ca': {path} holds no PEM certificate"),
    ("client_ca", "missing", r"'client_ca': cannot read {path}: No such file or directory"),
    ("ca_file", "junk", r"'ca_file': {path} holds no PEM certificate"),
    ("ca_file", "missing", r"'ca_file': cannot read {path}: No such file or directory"),
    ("secret", "empty", r"'client_secret_file': {path} must hold the secret on one line"),
    ("secret", "missing", r"'client_secret_file': cannot read {path}: No such file or directory"),
]


@pytest.mark.parametrize("key,bad,words", BAD_FILES,
                         ids=[f"{k}-{b}" for k, b, _ in BAD_FILES])
def test_a_bad_file_is_refused_at_its_key_by_check_and_daemon(tmp_path, pki, key, bad, words):
    port = free_port()
    files = {"cert": pki["cert"], "key": pki["key"], "client_ca": pki["cert"],
             "ca_file": pki["cert"], "secret": pki["secret"]}
    fmt = dict(port=port, tmp=tmp_path, **files)
    good = write(tmp_path, TLS_CFG.format(**fmt), "good.yaml")
    rc, out = check(good)
    assert rc == 0 and "ok (1 app, 1 listener)" in out, out  # the check below can fail
    files[key] = tmp_path / "missing.pem" if bad == "missing" else pki[bad]
    text = TLS_CFG.format(**dict(fmt, **files))
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = error_lines(p, out)
    assert len(errs) == 1, out
    yaml_key = "client_secret_file" if key == "secret" else key
    no = next(i for i, l in enumerate(text.splitlines(), 1) if f" {yaml_key}: {files[key]}" in l)
    col = col_of(text, no, f"{yaml_key}: {files[key]}") + len(yaml_key) + 2
    assert errs[0][:2] == (no, col), out
    assert re.match(words.format(path=re.escape(str(files[key]))), errs[0][2]), out
    assert not (tmp_path / "state").exists(), "check created state_dir"
    assert not (tmp_path / "requests.log").exists(), "check opened a log file"
    drc, dout = daemon(p)
    assert drc == 2 and positioned(p, dout) == positioned(p, out), (out, dout)


def test_check_writes_nothing(tmp_path):
    text = VALID.format(port=free_port(), tmp=tmp_path)
    p = write(tmp_path, text)
    before = sorted(x.name for x in tmp_path.iterdir())
    rc, out = check(p)
    assert rc == 0, out
    assert sorted(x.name for x in tmp_path.iterdir()) == before, out


def one_app(tmp_path):
    """A configuration of one bypass app, a.localhost, ending in its apps: list."""
    return textwrap.dedent(f"""\
        listen: [{{address: 127.0.0.1:{free_port()}}}]
        state_dir: {tmp_path}/state
        apps:
          - {{name: a, domains: [a.localhost], origin: echo, policies: [{{name: p, decision: bypass, include: [{{everyone: {{}}}}]}}]}}
        """)


def test_route_errors_on_stderr_with_their_position(tmp_path):
    """Two apps declaring the same pattern in two spellings (found when routes are built)."""
    text = one_app(tmp_path) + (
        "  - name: b\n"
        "    domains: [\"A.localhost./*\"]\n"
        "    origin: echo\n"
        "    policies: [{name: p, decision: bypass, include: [{everyone: {}}]}]\n")
    p = write(tmp_path, text)
    r = subprocess.run([LATCHD, "check", str(p)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    errs = error_lines(p, r.stderr)
    assert [(l, c) for l, c, _ in errs] == [(6, col_of(text, 6, '"A.localhost'))], r.stderr
    assert '"a" and "b"' in errs[0][2], r.stderr



def test_invalid_patterns_on_stderr_each_at_its_position(tmp_path):
    """Issue 12: patterns are compiled where the runtime is built (config/ includes no route/):
    `latchd check` still names every invalid one at its position, on stderr, in the file's order
    among the other errors (a certificate that cannot be read), and the daemon refuses the same
    file with the same lines and exit status 2."""
    text = one_app(tmp_path).replace("[a.localhost]", '["a..localhost", "b.localhost:0"]') + (
        "  - name: b\n"
        "    domains: [\"c.localhost/x y\"]\n"
        "    origin: https://127.0.0.1:1\n"
        "    origin_tls: {ca_file: /nonexistent/ca.pem}\n"
        "    policies: [{name: p, decision: bypass, include: [{everyone: {}}]}]\n")
    p = write(tmp_path, text)
    r = subprocess.run([LATCHD, "check", str(p)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    errs = error_lines(p, r.stderr)
    assert [(l, c) for l, c, _ in errs] == [
        (4, col_of(text, 4, '"a..localhost')), (4, col_of(text, 4, '"b.localhost:0')),
        (6, col_of(text, 6, '"c.localhost')), (8, col_of(text, 8, "/nonexistent"))], r.stderr
    assert "invalid domain pattern 'a..localhost'" in errs[0][2], r.stderr
    assert "invalid domain pattern 'b.localhost:0'" in errs[1][2], r.stderr
    assert "invalid domain pattern 'c.localhost/x y'" in errs[2][2], r.stderr
    d = subprocess.run([LATCHD, "--config", str(p)], capture_output=True, text=True, timeout=20)
    assert d.returncode == 2 and error_lines(p, d.stderr) == errs, d.stderr

WARN_CFG = textwrap.dedent("""\
    listen:
      - address: 0.0.0.0:{port}
    state_dir: {tmp}/state
    auth_domain: auth.localhost:{other}
    log: {{ requests: {tmp}/no-such-dir/requests.log }}
    apps:
      - name: wiki
        domains: [wiki.localhost]
        origin: echo
        policies:
          - {{ name: staff, decision: allow, include: [{{ email_domain: example.com }}] }}
          - {{ name: ci, decision: allow, include: [{{ any_valid_service_token: {{}} }}] }}
      - name: api
        domains: [api.localhost]
        origin: echo
        policies: [{{ name: dev, decision: allow, include: [{{ group: dev }}] }}]
    """)


def test_warnings_are_not_errors(tmp_path):
    port, other = free_port(), free_port()
    text = WARN_CFG.format(port=port, other=other, tmp=tmp_path)
    p = write(tmp_path, text)
    r = subprocess.run([LATCHD, "check", "--config", str(p)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{p}: ok (2 apps, 1 listener; 4 warnings above)\n", r.stdout
    warns = error_lines(p, r.stderr)
    assert all(m.startswith("warning: ") for _, _, m in warns), r.stderr
    at = {(l, c): m for l, c, m in warns}
    assert len(at) == 4, r.stderr
    # the listener: taken to stand behind a TLS terminator on https:443
    m = at[(2, col_of(text, 2, "address"))]
    assert f"0.0.0.0:{port}" in m and "https://…:443" in m and "public:" in m, m
    # the auth domain's port: no listener serves it (the listener is public on https:443)
    m = at[(4, col_of(text, 4, "auth.localhost"))]
    assert f"auth.localhost:{other}" in m and "https:443" in m, m
    # the log's directory
    m = at[(5, col_of(text, 5, str(tmp_path)))]
    assert "no-such-dir does not exist" in m, m
    # an allow policy that admits people with no identity provider (once, the others counted;
    # the one admitting service tokens only is not about people)
    m = at[(11, col_of(text, 11, "{ name: staff"))]
    assert "'staff' of app 'wiki'" in m and "no identity provider" in m and "1 more allow policy" in m, m
    assert not (tmp_path / "no-such-dir").exists() and not (tmp_path / "state").exists()


def test_no_warning_where_all_is_said(tmp_path):
    """public: said, the auth domain served, an identity provider: nothing to warn about."""
    port = free_port()
    text = WARN_CFG.format(port=port, other=443, tmp=tmp_path).replace(
        f"0.0.0.0:{port}\n", f"0.0.0.0:{port}\n    public: {{ scheme: https, port: 443 }}\n").replace(
        "/no-such-dir", "").replace(
        "apps:\n", "identity_providers: [{ name: pin, type: onetimepin, mail: console }]\napps:\n")
    p = write(tmp_path, text)
    r = subprocess.run([LATCHD, "check", str(p)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == f"{p}: ok (2 apps, 1 listener)\n", r.stdout


def test_plurals(tmp_path):
    text = one_app(tmp_path)
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 0 and f"{p}: ok (1 app, 1 listener)" in out, out
    text2 = text.replace("listen: [", f"listen: [{{address: 127.0.0.1:{free_port()}}}, ").replace(
        "apps:\n", "apps:\n  - {name: b, domains: [b.localhost], origin: echo, policies: [{name: p, "
        "decision: bypass, include: [{everyone: {}}]}]}\n")
    p2 = write(tmp_path, text2, "two.yaml")
    rc, out = check(p2)
    assert rc == 0 and f"{p2}: ok (2 apps, 2 listeners)" in out, out


@pytest.mark.parametrize("typo,line,word,near", [
    ("polices: []", 8, "polices", "policies"),
    ("policies: [{name: p, decision: bypass, include: [{everyon: {}}]}]", 8, "everyon", "everyone"),
    ("policies: [{name: p, decision: alow, include: [{everyone: {}}]}]", 8, "alow", "allow"),
], ids=["key", "selector", "decision"])
def test_did_you_mean(tmp_path, typo, line, word, near):
    text = textwrap.dedent(f"""\
        listen: [{{address: 127.0.0.1:{free_port()}}}]
        state_dir: {tmp_path}/state
        auth_domain: auth.localhost
        apps:
          - name: a
            domains: [a.localhost]
            origin: echo
            {typo}
        """)
    p = write(tmp_path, text)
    rc, out = check(p)
    assert rc == 2, out
    errs = [e for e in error_lines(p, out) if f"'{word}'" in e[2]]
    assert errs and errs[0][:2] == (line, col_of(text, line, word)), out
    assert f"(did you mean '{near}'?)" in errs[0][2], out
    if word != "alow":  # the valid ones are listed
        assert "valid " in errs[0][2] and near in errs[0][2].split("valid ", 1)[1], out


# --------------------------------------------------------------------------------------------
# the command line: a lone path is the configuration; a misuse says what to type


def latchd(*args):
    r = subprocess.run([LATCHD, *args], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout, r.stderr


def test_lone_path_is_the_configuration(tmp_path):
    p = write(tmp_path, VALID.format(port=free_port(), tmp=tmp_path))
    assert latchd("check", str(p)) == latchd("check", "--config", str(p))
    rc, out, err = latchd("check", str(p))
    assert rc == 0 and out.startswith(f"{p}: ok"), (out, err)
    bad = write(tmp_path, "listen: []\n", "bad.yaml")
    rc, out, err = latchd("check", str(bad))
    assert rc == 2 and error_lines(bad, err), err
    # policy-test too: its only word is the configuration
    rc, out, err = latchd("policy-test", str(p), "--url", "http://pub.localhost/")
    assert rc == 0 and "decision: bypass" in out, (out, err)


@pytest.mark.parametrize("args,says", [
    (["check"], "latchd check --config FILE"),
    (["revoke", "--email", "a@example.com"], "latchd revoke --config FILE --email a@example.com"),
    ([], "latchd --config FILE"),
    (["chekc", "x.yaml"], "did you mean 'check'?"),
    (["tokn", "issue"], "did you mean 'token issue'?"),
    (["token"], "the command is 'latchd token issue'"),
    (["x.yaml"], "latchd check x.yaml"),
    (["check", "--config", "a.yaml", "b.yaml"], "unexpected argument 'b.yaml'"),
    (["revoke", "--emial", "a@example.com", "x.yaml"], "did you mean --email?"),
    (["status", "--json=yes", "x.yaml"], "--json takes no value"),
    (["policy-test", "x.yaml", "--url"], "--url needs a value: --url URL"),
    (["--json", "status"], "options go after the command"),
], ids=["no-config", "retype", "daemon-no-config", "typo", "typo-two-words", "half", "bare-file",
        "two-files", "option-typo", "flag-value", "missing-value", "option-first"])
def test_misuse_says_what_to_type(args, says):
    rc, out, err = latchd(*args)
    assert rc == 64 and out == "", (out, err)
    assert says in err, err
    assert len(err.splitlines()) <= 3, err  # not the whole usage


def test_seventy_groups(tmp_path):
    """No argument is dropped: 70 --group values, the last one the group the policy requires."""
    text = textwrap.dedent(f"""\
        listen: [{{address: 127.0.0.1:{free_port()}}}]
        state_dir: {tmp_path}/state
        auth_domain: auth.localhost
        identity_providers: [{{name: pin, type: onetimepin, mail: console}}]
        apps:
          - name: a
            domains: [a.localhost]
            origin: echo
            policies: [{{name: p, decision: allow, include: [{{group: g69}}]}}]
        """)
    p = write(tmp_path, text)
    groups = [w for i in range(70) for w in ("--group", f"g{i}")]
    rc, out, err = latchd("policy-test", "--config", str(p), "--url", "http://a.localhost/",
                          "--email", "x@example.com", *groups)
    assert rc == 0 and "decision: allow" in out, (out, err)


def test_seventy_stray_arguments(tmp_path):
    p = write(tmp_path, one_app(tmp_path))
    # a word, then option-value pairs: the old parser's 64-slot array was written one past
    # its end (seen under ASan)
    for stray in (["w"] + [w for i in range(35) for w in (f"--x{i}", "v")],
                  [f"w{i}" for i in range(70)]):
        rc, out, err = latchd("revoke", "--config", str(p), *stray)
        assert rc == 64 and len(err.splitlines()) <= 3, err
        assert "Sanitizer" not in err and "runtime error" not in err, err
