"""`latch ssh-gen` and `latch ssh-config` against a real latchd, the real ssh client and a real
sshd (sshkit.py), with a service token (LATCH_CLIENT_ID/SECRET: no browser ever): the key pair
latch writes is one ssh-keygen and ssh read (0600, made once), the certificate is fetched from
cert_sign and written as `<key>-cert.pub`, ssh logs in with them; `--refresh` keeps a certificate
that is still fresh and renews one that is not; the config block's `Match … exec` renews the
certificate before ssh reads it. Refusals say what a person can act on."""

import os
import re
import stat
import subprocess

import pytest

import authkit as ak
from clikit import cli_factory, gateway_config  # noqa: F401 (fixture)
from sshkit import SSH, SSH_KEYGEN, cert_info, run_ssh, sshd_factory  # noqa: F401 (fixture)


def svc_gateway(latchd, tmp_path, cert_duration="5m"):
    deploy = ak.make_service_token(tmp_path, "deploy")
    nossh = ak.make_service_token(tmp_path, "nossh")
    deploy[2]["ssh"] = {"principals": ["root", "deploy"]}
    from harness import free_port
    port = free_port()
    robots = {"name": "robots", "decision": "service_auth",
              "include": [{"service_token": "deploy"}, {"service_token": "nossh"}]}
    apps = [{"name": "shell", "domains": [f"ssh.localhost:{port}"], "origin": "echo",
             "ssh": {"principals": ["{email_local}"], "cert_duration": cert_duration}, "policies": [robots]},
            {"name": "web", "domains": [f"web.localhost:{port}"], "origin": "echo", "policies": [robots]}]
    d = latchd(gateway_config(port, apps, service_tokens=[deploy[2], nossh[2]]), port=port)
    return d, port, deploy, nossh


def creds(tok):
    return {"LATCH_CLIENT_ID": tok[0], "LATCH_CLIENT_SECRET": tok[1]}


def paths(out):
    k = re.search(r"^private key: (\S+)$", out, re.M)
    c = re.search(r"^certificate: (\S+)$", out, re.M)
    assert k and c, out
    return k.group(1), c.group(1)


def serial(cert_path):
    return re.search(r"Serial: (\d+)", cert_info(cert_path)).group(1)


def test_ssh_gen_with_a_service_token(latchd, tmp_path, cli_factory, sshd_factory):
    d, port, deploy, _ = svc_gateway(latchd, tmp_path)
    cli = cli_factory(d)
    host = f"http://ssh.localhost:{port}"
    r = cli.run("ssh-gen", "--hostname", host, browser="forbidden", env=creds(deploy))
    assert r.returncode == 0, r.stderr
    key, cert = paths(r.stdout)
    assert cert == key + "-cert.pub" and key.startswith(str(cli.store))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cli.store).st_mode) == 0o700
    # a private key in OpenSSH's format: ssh-keygen derives the same public key from it
    pub = open(key + ".pub").read().split()
    y = subprocess.run([SSH_KEYGEN, "-y", "-f", key], capture_output=True, text=True, timeout=30)
    assert y.returncode == 0 and y.stdout.split()[:2] == pub[:2], y
    info = cert_info(cert)
    assert 'Key ID: "deploy"' in info and "root" in info
    # ssh logs in with the key and the certificate next to it
    ca = ak.cli(d, "ssh-ca", "--app", "shell", check=True).stdout.strip()
    s = sshd_factory(trusted_ca=ca)
    r2 = run_ssh(s, user="root", command="id -un", identity=key)
    assert r2.returncode == 0 and r2.stdout.strip() == "root", (r2.stderr, s.log())
    assert not cli.forbidden_browser_calls()
    # again: the same key, a new certificate; --refresh keeps a fresh one as it is
    first = serial(cert)
    r = cli.run("ssh-gen", "--hostname", host, browser="forbidden", env=creds(deploy))
    assert r.returncode == 0, r.stderr
    assert open(key + ".pub").read().split()[:2] == pub[:2]
    second = serial(cert)
    assert second != first
    r = cli.run("ssh-gen", "--hostname", host, "--refresh", browser="forbidden", env=creds(deploy))
    assert r.returncode == 0 and serial(cert) == second, r.stderr


def test_refresh_renews_a_certificate_near_its_end(latchd, tmp_path, cli_factory):
    d, port, deploy, _ = svc_gateway(latchd, tmp_path, cert_duration="30s")
    cli = cli_factory(d)
    host = f"http://ssh.localhost:{port}"
    r = cli.run("ssh-gen", "--hostname", host, browser="forbidden", env=creds(deploy))
    assert r.returncode == 0, r.stderr
    _, cert = paths(r.stdout)
    first = serial(cert)
    # 30 s left is within the minute latch keeps in hand: renewed
    r = cli.run("ssh-gen", "--hostname", host, "--refresh", browser="forbidden", env=creds(deploy))
    assert r.returncode == 0 and serial(cert) != first, r.stderr
    # a certificate file that is not one is replaced too
    open(cert, "w").write("garbage\n")
    r = cli.run("ssh-gen", "--hostname", host, "--refresh", browser="forbidden", env=creds(deploy))
    assert r.returncode == 0 and serial(cert), r.stderr


def test_ssh_config_block_and_match_exec_renewal(latchd, tmp_path, cli_factory, sshd_factory):
    d, port, deploy, _ = svc_gateway(latchd, tmp_path)
    cli = cli_factory(d)
    host = f"http://ssh.localhost:{port}"
    r = cli.run("ssh-config", "--hostname", "ssh.example.com")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"Host ssh\.example\.com\n    ProxyCommand /\S+/latch ssh --hostname %h\n", r.stdout), r.stdout
    r = cli.run("ssh-config", "--hostname", host, "--short-lived-cert")
    assert r.returncode == 0, r.stderr
    key = f"{cli.store}/ssh-ssh.localhost:{port}"
    lines = r.stdout.splitlines()
    assert lines[0] == f'Match host ssh.localhost exec "{os.path.realpath(os.environ.get("LATCH") or "build/latch")} ' \
                       f'ssh-gen --hostname {host} --refresh"', r.stdout
    assert lines[1:3] == [f"    IdentityFile {key}", f"    CertificateFile {key}-cert.pub"], r.stdout
    assert lines[3] == "Host ssh.localhost" and lines[4].endswith(f"latch ssh --hostname {host}"), r.stdout
    # the Match block as printed, then this test's own Host block (straight to sshd: the tunnel
    # is latch ssh's): ssh runs ssh-gen before it reads the certificate
    ca = ak.cli(d, "ssh-ca", "--app", "shell", check=True).stdout.strip()
    s = sshd_factory(trusted_ca=ca)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{s.port} " + " ".join((s.dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]) + "\n")
    cfg = tmp_path / "ssh_config"
    cfg.write_text("\n".join(lines[:3]) + f"""
Host ssh.localhost
    HostName 127.0.0.1
    Port {s.port}
    User root
    BatchMode yes
    IdentitiesOnly yes
    UserKnownHostsFile {kh}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
""")
    env = cli.env("forbidden", **creds(deploy))
    for attempt in range(2):   # the first makes key and certificate, the second reuses them
        p = subprocess.run([SSH, "-F", str(cfg), "ssh.localhost", "id -un"], capture_output=True, text=True,
                           env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and p.stdout.strip() == "root", (attempt, p.stderr, s.log())
    assert os.path.exists(key + "-cert.pub")


def test_parallel_ssh_gen_make_one_key(latchd, tmp_path, cli_factory):
    """Parallel ssh connections each run ssh-gen (Match exec): one key pair, and the certificate
    left in place is for that key."""
    d, port, deploy, _ = svc_gateway(latchd, tmp_path)
    cli = cli_factory(d)
    host = f"http://ssh.localhost:{port}"
    procs = [cli.popen("ssh-gen", "--hostname", host, "--refresh", browser="forbidden", env=creds(deploy))
             for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    key, cert = paths(outs[0][0])
    fp = subprocess.run([SSH_KEYGEN, "-l", "-f", key + ".pub"], capture_output=True, text=True,
                        check=True, timeout=30).stdout.split()[1]
    assert f"Public key: ED25519-CERT {fp}" in cert_info(cert)
    y = subprocess.run([SSH_KEYGEN, "-y", "-f", key], capture_output=True, text=True, timeout=30)
    assert y.stdout.split()[1] == open(key + ".pub").read().split()[1]


def test_refusals_say_what_to_do(latchd, tmp_path, cli_factory):
    d, port, deploy, nossh = svc_gateway(latchd, tmp_path)
    cli = cli_factory(d)
    r = cli.run("ssh-gen", "--hostname", f"http://ssh.localhost:{port}", browser="forbidden", env=creds(nossh))
    assert r.returncode == 4 and "certificate not allowed for this principal" in r.stderr, r
    r = cli.run("ssh-gen", "--hostname", f"http://web.localhost:{port}", browser="forbidden", env=creds(deploy))
    assert r.returncode == 4 and "does not issue SSH certificates" in r.stderr, r
    r = cli.run("ssh-gen", "--hostname", f"http://ssh.localhost:{port}", browser="forbidden",
                env={"LATCH_CLIENT_ID": deploy[0], "LATCH_CLIENT_SECRET": "wrong" * 8})
    assert r.returncode == 4 and "refused the credentials" in r.stderr, r
    for args in (["ssh-gen"], ["ssh-gen", "--hostname"], ["ssh-config", "--hostname", "h", "--bogus"]):
        r = cli.run(*args)
        assert r.returncode == 64 and ("--hostname" in r.stderr or "unknown option '--bogus'" in r.stderr), (args, r)
    assert not cli.forbidden_browser_calls()
