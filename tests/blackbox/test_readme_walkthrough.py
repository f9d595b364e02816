"""README's "Protect your own app", done as a newcomer does it: its YAML as printed (ports and
state_dir moved to the test's own), its `latchd check` and `latchd policy-test` lines with the
outcomes the README states, latchd run on it in front of a real origin, curl refused without a
token, and `latch curl` signing in through Chromium (one-time PIN from latchd's output) and
reaching the origin, which hears who it was."""

import re
import shlex
import subprocess

from clikit import EMAIL, cli_factory, needs_browser, printed  # noqa: F401 (fixture)
from harness import LATCHD, ROOT, Origin, curl, free_port

README = ROOT / "README.md"
SECTION = "## Protect your own app"


def section():
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def block(text, lang):
    m = re.search(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)
    assert m, f"README.md, {SECTION}: no ```{lang} block"
    return m.group(1)


def localize(text, port, origin_port, state, cfg):
    """The README's example on the test's ports, state_dir and config file."""
    return (text.replace(":8080", f":{port}").replace("127.0.0.1:9000", f"127.0.0.1:{origin_port}")
            .replace("./latch-state", str(state)).replace("my-app.yaml", str(cfg))
            .replace("build/latchd", LATCHD))


def test_the_walkthrough_has_its_parts():
    s = section()
    yml = block(s, "yaml")
    assert len(yml.splitlines()) <= 20, "the walk-through's configuration stays short"
    sh = block(s, "sh")
    for step in ("latchd check", "latchd policy-test", "latchd --config"):
        assert step in sh, step
    assert "latch curl" in s and "docs/configuration.md" in s


@needs_browser
def test_the_walkthrough_works(latchd, cli_factory, tmp_path):
    origin = Origin()
    port = free_port()
    cfg = tmp_path / "my-app.yaml"
    s = section()
    cfg.write_text(localize(block(s, "yaml"), port, origin.port, tmp_path / "latch-state", cfg))

    # check and policy-test, as the README writes them, with the outcomes it states
    commands = [ln.split("#")[0].strip() for ln in block(s, "sh").splitlines()]
    commands = [localize(c, port, origin.port, tmp_path / "latch-state", cfg) for c in commands if c]
    check, allow, deny, run = commands
    p = subprocess.run(shlex.split(check), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == f"{cfg}: ok (1 app, 1 listener)", p
    p = subprocess.run(shlex.split(allow), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "decision: allow by policy my-team" in p.stdout, p
    p = subprocess.run(shlex.split(deny), capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "decision: deny" in p.stdout, p
    assert shlex.split(run) == [LATCHD, "--config", str(cfg)]

    d = latchd(cfg.read_text(), port=port, literal=True)
    url = f"http://myapp.localhost:{port}/"
    r = curl(url)
    assert r.status == 401 and origin.requests == [], r

    c = cli_factory(d)
    p = c.run("--timeout", "60", "curl", "-sS", url, timeout=90)
    code, _ = printed(p.stderr)
    assert p.returncode == 0 and code and f"signed in to myapp.localhost:{port} as {EMAIL}" in p.stderr, p
    seen = dict((k.lower(), v) for k, v in origin.requests[-1]["headers"])
    assert seen["cf-access-authenticated-user-email"] == EMAIL, seen
    assert seen["cf-access-jwt-assertion"].count(".") == 2, seen

    # the next call reuses the stored token: no browser
    p = c.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url, browser="forbidden")
    assert p.returncode == 0 and p.stdout == "200" and not c.forbidden_browser_calls(), p
