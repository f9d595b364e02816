"""A real OpenSSH server and client for the SSH black-box tests (short-lived certificates,
`latch ssh` tunnels).

Sshd: the Debian `/usr/sbin/sshd -D -e -f CONFIG` on a free loopback port, with everything of its
own in the test's temp dir: an Ed25519 host key, sshd_config, PidFile, AuthorizedKeysFile and
TrustedUserCAKeys (either may be left empty). The tests run as root, so the config permits root
logins by public key only (`PermitRootLogin prohibit-password`), with `StrictModes no` (the temp
dir's modes are not sshd's business here) and `UsePAM no`. Started, it is waited for until it
answers with its SSH banner; stopped by its pid at the end of the test. Its output (-e: the log
on stderr) is kept in sshd.log, which `.log()` reads, e.g. to see why a certificate was refused.

Ssh: `run_ssh(...)` runs the real `ssh` client against it in BatchMode (never a prompt), with a
UserKnownHostsFile in the temp dir holding the server's host key (StrictHostKeyChecking yes, so a
wrong host key fails), IdentityFile/CertificateFile as given, an optional ProxyCommand, no
config file of the user's (-F none), and returns the CompletedProcess.

Only the process a test started is ever signalled, by its pid."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import free_port, stop_pid

SSHD = os.environ.get("SSHD", "/usr/sbin/sshd")
SSH = os.environ.get("SSH", "/usr/bin/ssh")
SSH_KEYGEN = os.environ.get("SSH_KEYGEN", "/usr/bin/ssh-keygen")


def keygen(path, kind="ed25519", bits=None, comment="test"):
    """Makes a key pair without a passphrase at `path` (private) and `path`.pub; returns Path."""
    path = Path(path)
    args = [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        args[2:2] = ["-b", str(bits)]
    subprocess.run(args, check=True, timeout=30, capture_output=True)
    return path


class Sshd:
    """One sshd. `trusted_ca` (str: one or more public key lines) goes to TrustedUserCAKeys,
    `authorized_keys` (str) to AuthorizedKeysFile; `extra` (str) is appended to sshd_config."""

    def __init__(self, tmp, trusted_ca="", authorized_keys="", extra="", port=None):
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host_key = keygen(self.dir / "ssh_host_ed25519_key", comment="host")
        self.ca_file = self.dir / "trusted_user_ca_keys"
        self.ca_file.write_text(trusted_ca if trusted_ca.endswith("\n") or not trusted_ca
                                else trusted_ca + "\n")
        self.auth_keys = self.dir / "authorized_keys"
        self.auth_keys.write_text(authorized_keys)
        self.pid_file = self.dir / "sshd.pid"
        self.log_path = self.dir / "sshd.log"
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.pid_file}\n"
            f"AuthorizedKeysFile {self.auth_keys}\n"
            f"TrustedUserCAKeys {self.ca_file}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "HostbasedAuthentication no\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "UseDNS no\n"
            "LogLevel VERBOSE\n"
            "MaxStartups 100\n"
            "Subsystem sftp internal-sftp\n"
            + extra + ("\n" if extra and not extra.endswith("\n") else ""))
        self.proc = None

    def known_hosts_line(self):
        pub = (self.dir / "ssh_host_ed25519_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def start(self, timeout=15.0):
        # sshd's privilege separation directory; Debian's package makes it at boot only.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True,
                               text=True, timeout=30)
        assert check.returncode == 0, f"sshd -t refused the config: {check.stderr}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd did not answer on {self.port}: {self.log()}")
            time.sleep(0.05)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def set_trusted_ca(self, lines):
        """Rewrites TrustedUserCAKeys (sshd reads it on each authentication)."""
        self.ca_file.write_text(lines if lines.endswith("\n") else lines + "\n")

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None
            self._log.close()


def run_ssh(sshd, user="root", command="id -un", identity=None, certificate=None,
            proxy_command=None, host=None, port=None, options=(), timeout=60, env=None,
            input=None):
    """Runs the real ssh client against `sshd` (an Sshd) and returns the CompletedProcess (text).
    `identity`: the private key file (IdentitiesOnly, so only that key is offered);
    `certificate`: its certificate file (default: ssh's own `<identity>-cert.pub` lookup);
    `proxy_command`: a ProxyCommand string (%h %p expanded by ssh); `host`/`port` default to the
    server's loopback address (with a ProxyCommand, `host` is what %h becomes, and the known
    hosts line is written for it too)."""
    host = host or "127.0.0.1"
    port = port or sshd.port
    kh = sshd.dir / f"known_hosts_{os.getpid()}"
    line = sshd.known_hosts_line()
    text = line
    if host != "127.0.0.1" or port != sshd.port:
        name = host if port == 22 else f"[{host}]:{port}"
        text += f"{name} {' '.join(line.split()[1:])}\n"
    kh.write_text(text)
    args = [SSH, "-F", "none", "-p", str(port),
            "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={kh}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", "ConnectTimeout=20",
            "-o", "LogLevel=ERROR"]
    if identity:
        args += ["-o", "IdentitiesOnly=yes", "-i", str(identity)]
    if certificate:
        args += ["-o", f"CertificateFile={certificate}"]
    if proxy_command:
        args += ["-o", f"ProxyCommand={proxy_command}"]
    for o in options:
        args += ["-o", o]
    args += ["-l", user, host]
    if command is not None:
        args += ["--", command] if isinstance(command, str) else ["--", *command]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def cert_info(path):
    """`ssh-keygen -L -f path` as text (raises if ssh-keygen cannot read the certificate)."""
    r = subprocess.run([SSH_KEYGEN, "-L", "-f", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"ssh-keygen -L failed: {r.stderr}"
    return r.stdout


@pytest.fixture
def sshd_factory(tmp_path):
    """Factory: sshd_factory(trusted_ca=..., authorized_keys=..., extra=...) starts an Sshd;
    each is stopped at the end of the test."""
    made = []

    def make(name="sshd", **kw):
        s = Sshd(tmp_path / f"{name}{len(made)}", **kw)
        made.append(s)
        return s.start()

    yield make
    for s in made:
        s.stop()


__all__ = ["Sshd", "run_ssh", "keygen", "cert_info", "sshd_factory", "SSH", "SSHD", "SSH_KEYGEN"]
