"""`make deb` (scripts/deb.sh, dist/debian/): the Debian package holds latchd and latch, their
man pages, the systemd unit, the docs and examples; its control file names the libraries'
packages; its maintainer scripts are valid sh and make the user `latch` and /var/lib/latch
once however often they run. The package is unpacked into a temporary folder (never installed
on this machine) and its own latchd checks its own example."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import LATCHD, ROOT, materialize
from test_tls import make_cert

pytestmark = pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb (Debian)")

VERSION = re.search(r'LATCH_VERSION "([^"]+)"', (ROOT / "src/core/version.h").read_text()).group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The package built from the programs under test (LATCHD's folder), in a temporary folder."""
    out = tmp_path_factory.mktemp("deb")
    build = Path(LATCHD).resolve().parent
    p = subprocess.run([str(ROOT / "scripts" / "deb.sh"), str(build), str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    path = out / f"latch_{VERSION}_{arch}.deb"
    assert p.stdout.strip() == str(path) and path.is_file(), p.stdout
    return path


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(root / "DEBIAN")], check=True, timeout=60)
    return root


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_control_fields(deb):
    assert field(deb, "Package") == "latch"
    assert field(deb, "Version") == VERSION
    assert field(deb, "Architecture") == subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r".+ <[^@ ]+@[^> ]+>", field(deb, "Maintainer"))
    assert int(field(deb, "Installed-Size")) > 100
    assert field(deb, "Description").startswith("zero-trust access gateway")
    depends = {re.sub(r"\s*\(.*\)", "", d.strip()) for d in field(deb, "Depends").split(",")}
    # the runtime libraries latchd and latch link, and adduser for the postinst
    for pkg in ("libssl3", "libsodium23", "libjansson4", "libyaml-0-2", "libcurl4",
                "libhiredis0.14", "libc6", "adduser"):
        assert pkg in depends, (pkg, depends)


def test_contents(deb, unpacked):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    owners = {l.split()[1] for l in listing.splitlines()}
    assert owners == {"root/root"}, owners
    for f in ("usr/bin/latchd", "usr/bin/latch"):
        assert os.access(unpacked / f, os.X_OK), f
    for f in ("usr/share/man/man8/latchd.8.gz", "usr/share/man/man1/latch.1.gz",
              "lib/systemd/system/latchd.service", "usr/share/doc/latch/README.md",
              "usr/share/doc/latch/configuration.md", "usr/share/doc/latch/examples/single-node.yaml",
              "usr/share/doc/latch/examples/demo.yaml", "usr/share/doc/latch/examples/cluster/latch.yaml"):
        assert (unpacked / f).is_file(), f
    # the unit runs the packaged programs
    unit = (unpacked / "lib/systemd/system/latchd.service").read_text()
    for exe in re.findall(r"^Exec\w+=(\S+latchd)\b", unit, re.M):
        assert exe == "/usr/bin/latchd", exe
    assert "User=latch" in unit and "StateDirectory=latch" in unit
    # md5sums covers every file
    sums = (unpacked / "DEBIAN" / "md5sums").read_text().split("\n")
    files = {l.split("  ", 1)[1] for l in sums if l}
    shipped = {str(p.relative_to(unpacked)) for p in unpacked.rglob("*")
               if p.is_file() and not str(p.relative_to(unpacked)).startswith("DEBIAN")}
    assert files == shipped


def test_maintainer_scripts_are_valid_sh(unpacked):
    scripts = [unpacked / "DEBIAN" / s for s in ("postinst", "prerm", "postrm")]
    for s in scripts:
        assert s.is_file() and os.access(s, os.X_OK), s
        assert s.read_text().startswith("#!/bin/sh\n"), s
        p = subprocess.run(["sh", "-n", str(s)], capture_output=True, text=True)
        assert p.returncode == 0, (s, p.stderr)
    # a broken script does fail sh -n: the check above can fail
    assert subprocess.run(["sh", "-n", "-c", "if then fi"], capture_output=True).returncode != 0


SHIMS = {
    # a fake account database in $STATE: getent answers from it
    "getent": 'grep -q "^$1 $2$" "$STATE/db" 2>/dev/null',
    "addgroup": 'echo "addgroup $*" >> "$STATE/log"; eval "last=\\${$#}"; echo "group $last" >> "$STATE/db"',
    "groupadd": 'echo "groupadd $*" >> "$STATE/log"; eval "last=\\${$#}"; echo "group $last" >> "$STATE/db"',
    "adduser": 'echo "adduser $*" >> "$STATE/log"; eval "last=\\${$#}"; echo "passwd $last" >> "$STATE/db"',
    "useradd": 'echo "useradd $*" >> "$STATE/log"; eval "last=\\${$#}"; echo "passwd $last" >> "$STATE/db"',
    "install": 'echo "install $*" >> "$STATE/log"',
    "chown": 'echo "chown $*" >> "$STATE/log"',
    "chmod": 'echo "chmod $*" >> "$STATE/log"',
    "systemctl": 'echo "systemctl $*" >> "$STATE/log"',
    "rm": 'echo "rm $*" >> "$STATE/log"',
}


def run_script(unpacked, tmp_path, name, *args, without=()):
    """A maintainer script with every command that would change this machine replaced by a
    shim that records its call (PATH holds only the shims and sh's own helpers)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    for tool, body in SHIMS.items():
        p = bin_ / tool
        if tool in without:
            p.unlink(missing_ok=True)
            continue
        p.write_text(f"#!/bin/sh\n{body}\n")
        p.chmod(0o755)
    for tool in ("grep", "echo", "cat"):  # harmless helpers the shims use
        if not (bin_ / tool).exists():
            (bin_ / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_), "STATE": str(tmp_path)}
    p = subprocess.run(["/bin/sh", str(unpacked / "DEBIAN" / name), *args], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    log = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return log


def test_postinst_makes_the_user_and_state_dir_once(unpacked, tmp_path):
    first = run_script(unpacked, tmp_path, "postinst", "configure")
    made = [l for l in first if l.startswith(("adduser", "addgroup"))]
    assert len(made) == 2, first
    user = next(l for l in made if l.startswith("adduser"))
    assert "--system" in user and "--home /var/lib/latch" in user and user.endswith(" latch"), user
    assert "install -d -m 0700 -o latch -g latch /var/lib/latch" in first, first
    # again (an upgrade, a reconfigure): the user is there, nothing is made twice
    again = run_script(unpacked, tmp_path, "postinst", "configure")[len(first):]
    assert not [l for l in again if l.startswith(("adduser", "addgroup"))], again
    assert "install -d -m 0700 -o latch -g latch /var/lib/latch" in again, again
    # other actions do nothing
    (tmp_path / "log").unlink()
    assert run_script(unpacked, tmp_path, "postinst", "abort-upgrade") == []


def test_postinst_without_adduser_uses_useradd(unpacked, tmp_path):
    log = run_script(unpacked, tmp_path, "postinst", "configure", without=("adduser", "addgroup"))
    user = next(l for l in log if l.startswith("useradd"))
    assert "--system" in user and "--home-dir /var/lib/latch" in user and user.endswith(" latch"), log
    assert any(l.startswith("groupadd --system latch") for l in log), log


def test_postrm_purge_removes_state_only_on_purge(unpacked, tmp_path):
    assert not [l for l in run_script(unpacked, tmp_path, "postrm", "remove") if l.startswith("rm")]
    log = run_script(unpacked, tmp_path, "postrm", "purge")
    assert "rm -rf /var/lib/latch /var/log/latch" in log, log


def test_packaged_latchd_checks_the_packaged_example(unpacked, tmp_path):
    latchd = unpacked / "usr/bin/latchd"
    v = subprocess.run([str(latchd), "--version"], capture_output=True, text=True, timeout=20)
    assert v.stdout.strip() == f"latchd {VERSION}", v.stdout + v.stderr
    ex = (unpacked / "usr/share/doc/latch/examples/single-node.yaml").read_text()
    # as packaged, its files are not there: refused, naming the first one at its key
    bare = tmp_path / "bare.yaml"
    bare.write_text(ex)
    p = subprocess.run([str(latchd), "check", str(bare)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stdout + p.stderr
    assert re.search(rf"^{re.escape(str(bare))}:\d+:\d+: 'cert': cannot read /etc/latch/fullchain.pem",
                     p.stderr, re.M), p.stderr
    # its files pointed at test fixtures: ok
    crt, key, _ = make_cert(tmp_path, "example.com")
    cfg = tmp_path / "latch.yaml"
    cfg.write_text(materialize(ex, tmp_path, (crt.read_bytes(), key.read_bytes())))
    p = subprocess.run([str(latchd), "check", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith(f"{cfg}: ok (4 apps, 2 listeners)"), \
        p.stdout + p.stderr
    # the packaged latch runs too
    v = subprocess.run([str(unpacked / "usr/bin/latch"), "--version"], capture_output=True,
                       text=True, timeout=20)
    assert VERSION in v.stdout, v.stdout + v.stderr
