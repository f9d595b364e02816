"""The product's documentation stands alone: every whole configuration in
docs/configuration.md passes `latchd check`, its links and anchors lead somewhere in the tree,
nothing under README.md, docs/, man/ or examples/ points outside the repository, and
`make install` installs the docs the man pages name."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import LATCHD, ROOT, materialize
from test_tls import make_cert

DOC = ROOT / "docs" / "configuration.md"
WHOLE = "# a whole configuration"


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
