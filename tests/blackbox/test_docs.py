"""The product's documentation stands alone: every whole configuration in
docs/configuration.md passes `latchd check`, its links and anchors lead somewhere in the tree,
nothing under README.md, docs/, man/ or examples/ points outside the repository, and
`make install` installs the docs the man pages name."""

import base64
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import LATCHD, ROOT
from test_tls import make_cert

DOC = ROOT / "docs" / "configuration.md"
WHOLE = "# a whole configuration"
# Where the examples put the files they name; the test makes each one under a temporary root.
SYSTEM_DIRS = ("/etc/latch/", "/var/lib/latch", "/var/log/latch/")


def yaml_blocks(text):
    """(line number, text) of every ```yaml block."""
    blocks, cur, start = [], None, 0
    for no, line in enumerate(text.splitlines(), 1):
        if cur is None and line.strip() == "```yaml":
            cur, start = [], no + 1
        elif cur is not None and line.strip() == "```":
            blocks.append((start, "\n".join(cur) + "\n"))
            cur = None
        elif cur is not None:
            cur.append(line)
    assert cur is None, f"{DOC}: a ```yaml block opened at line {start} is never closed"
    return blocks


def whole_configurations():
    return [(no, b) for no, b in yaml_blocks(DOC.read_text()) if b.startswith(WHOLE + "\n")]


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A self-signed certificate and its key: stand-ins for every certificate, key and CA."""
    crt, key, _ = make_cert(tmp_path_factory.mktemp("pem"), "example.com")
    return crt.read_bytes(), key.read_bytes()


def file_roles(node, key=None):
    """(key, value) of every string value in the parsed configuration."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from file_roles(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from file_roles(v, key)
    elif isinstance(node, str):
        yield key, node


def materialize(text, root, pem):
    """The block with its system paths moved under `root`, and the files it names made there
    with the content their key calls for."""
    for prefix in SYSTEM_DIRS:
        text = text.replace(prefix, str(root) + prefix)
    cert, key = pem
    contents = {
        "cert": cert, "client_ca": cert, "ca_file": cert, "key": key,
        "client_secret_file": b"an-oidc-client-secret\n",
        "store_password_file": b"a-redis-password\n",
        "store_key_file": base64.b64encode(os.urandom(32)) + b"\n",
        "logo": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
    }
    for k, v in file_roles(yaml.safe_load(text)):
        if not v.startswith(str(root) + "/"):
            continue
        p = Path(v)
        if k in contents:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(contents[k])
            p.chmod(0o600)
        elif k in ("requests", "auth"):  # log files
            p.parent.mkdir(parents=True, exist_ok=True)
    return text


def test_the_reference_has_whole_configurations():
    # The marker must not get lost: then nothing below would be checked.
    assert len(whole_configurations()) >= 20, f"{DOC}: blocks starting with '{WHOLE}'"


@pytest.mark.parametrize("line,block", whole_configurations(),
                         ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_whole_configuration_passes_check(tmp_path, pem, line, block):
    text = materialize(block, tmp_path, pem)
    cfg = tmp_path / "latch.yaml"
    cfg.write_text(text)
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and ": ok" in p.stdout, (
        f"docs/configuration.md:{line}: the example fails `latchd check`:\n{p.stdout}{p.stderr}"
        f"\n--- as checked:\n{text}")


def test_a_broken_example_would_be_caught(tmp_path, pem):
    """The check above can fail: the first example with a misspelt key is refused."""
    line, block = whole_configurations()[0]
    cfg = tmp_path / "latch.yaml"
    cfg.write_text(materialize(block.replace("policies:", "polices:", 1), tmp_path, pem))
    p = subprocess.run([LATCHD, "check", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "polices" in p.stdout + p.stderr


def product_docs():
    files = [ROOT / "README.md"]
    for d in ("docs", "man", "examples"):
        files += sorted(f for f in (ROOT / d).rglob("*") if f.is_file())
    return files


OUTSIDE = re.compile(r"SPEC\.md|\.\./shared|/work/shared|\bthe latch specification\b", re.I)


def test_no_reference_outside_the_repository():
    hits = []
    for f in product_docs():
        for no, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not hits, "the docs point outside the repository:\n" + "\n".join(hits)


def github_anchor(heading):
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to '-'."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_links_and_anchors_lead_somewhere():
    bad = []
    for f in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        text = f.read_text()
        anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL
            path, _, frag = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            if not dest.exists() or ROOT.resolve() not in dest.parents:
                bad.append(f"{f.relative_to(ROOT)}: {target}: no such file in the tree")
            elif frag and dest == f and frag not in anchors:
                bad.append(f"{f.relative_to(ROOT)}: {target}: no such heading")
    assert not bad, "\n".join(bad)


def test_readme_and_man_pages_point_to_the_reference():
    assert "docs/configuration.md" in (ROOT / "README.md").read_text()
    for page in ("latchd.8", "latch.1"):
        assert "/usr/local/share/doc/latch/configuration.md" in (ROOT / "man" / page).read_text(), page


def test_make_install_installs_the_docs(tmp_path):
    dest = tmp_path / "stage"
    build = Path(LATCHD).resolve().parent
    # -o all: install what is built, never rebuild here
    p = subprocess.run(["make", "-s", "-o", "all", "install", f"DESTDIR={dest}", f"BUILD={build}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = dest / "usr/local/share/doc/latch"
    for f in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        assert (doc / f.name).read_bytes() == f.read_bytes(), f.name
