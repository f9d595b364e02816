"""Issue 13 whole: ssh through `ProxyCommand latch ssh` to a tcp:// app in front of a real sshd
that trusts only the app's SSH CA (no authorized keys at all), with the short-lived certificate
`latch ssh-gen` fetched, for a service token (no browser). A command runs as the certificate's
principal; a certificate for another principal is refused by sshd; an expired certificate is
refused, and `latch ssh` renews it on that connection, so the next one logs in."""

import re
import time

import authkit as ak
from clikit import LATCH, cli_factory, gateway_config  # noqa: F401 (fixture)
from harness import free_port
from sshkit import cert_info, run_ssh, sshd_factory  # noqa: F401 (fixture)


def gateway(latchd, tmp_path, sshd_port, principals, cert_duration="5m"):
    robot = ak.make_service_token(tmp_path, "robot")
    robot[2]["ssh"] = {"principals": principals}
    port = free_port()
    apps = [{"name": "shell", "domains": [f"ssh.localhost:{port}"], "origin": f"tcp://127.0.0.1:{sshd_port}",
             "ssh": {"principals": ["{email_local}"], "cert_duration": cert_duration},
             "policies": [{"name": "robots", "decision": "service_auth",
                           "include": [{"service_token": "robot"}]}]}]
    d = latchd(gateway_config(port, apps, service_tokens=[robot[2]]), port=port)
    env = {"LATCH_CLIENT_ID": robot[0], "LATCH_CLIENT_SECRET": robot[1]}
    return d, port, env


def start(latchd, tmp_path, cli_factory, sshd_factory, principals, cert_duration="5m"):
    # the sshd's port first (the app names it), its CA once the gateway made it
    s = sshd_factory(trusted_ca="")
    d, port, env = gateway(latchd, tmp_path, s.port, principals, cert_duration)
    s.set_trusted_ca(ak.cli(d, "ssh-ca", "--app", "shell", check=True).stdout.strip())
    cli = cli_factory(d)
    host = f"http://ssh.localhost:{port}"
    r = cli.run("ssh-gen", "--hostname", host, browser="forbidden", env=env)
    assert r.returncode == 0, r.stderr
    key = re.search(r"^private key: (\S+)$", r.stdout, re.M).group(1)

    def ssh(command="id -un"):
        return run_ssh(s, user="root", command=command, identity=key, host="ssh.example",
                       proxy_command=f"{LATCH} ssh --hostname {host}", env=cli.env("forbidden", **env))
    return s, cli, key, ssh


def test_ssh_through_latch_with_its_certificate(latchd, tmp_path, cli_factory, sshd_factory):
    s, cli, key, ssh = start(latchd, tmp_path, cli_factory, sshd_factory, ["root"])
    r = ssh("id -un; echo $SSH_CONNECTION")
    assert r.returncode == 0, (r.stderr, s.log())
    assert r.stdout.split("\n")[0] == "root"
    assert r.stdout.split()[1] == "127.0.0.1"   # reached through latchd, on loopback
    assert 'Key ID: "robot"' in cert_info(key + "-cert.pub")
    assert not cli.forbidden_browser_calls()


def test_a_certificate_for_another_principal_is_refused_by_sshd(latchd, tmp_path, cli_factory, sshd_factory):
    s, cli, key, ssh = start(latchd, tmp_path, cli_factory, sshd_factory, ["deploy"])
    assert "deploy" in cert_info(key + "-cert.pub")
    r = ssh()
    assert r.returncode == 255 and "root" not in r.stdout, r
    assert re.search(r"not allowed|Permission denied|principal", r.stderr + s.log()), (r.stderr, s.log())


def test_an_expired_certificate_is_renewed_by_latch_ssh(latchd, tmp_path, cli_factory, sshd_factory):
    s, cli, key, ssh = start(latchd, tmp_path, cli_factory, sshd_factory, ["root"], cert_duration="10s")
    info = cert_info(key + "-cert.pub")
    serial = re.search(r"Serial: (\d+)", info).group(1)
    valid_to = re.search(r"Valid: from \S+ to (\S+)", info).group(1)
    assert ssh().returncode == 0, s.log()
    # let it expire: ssh reads the certificate before its ProxyCommand runs, so this connection
    # is refused, and latch ssh renews the certificate on the way
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(11)
        r = ssh()
        if r.returncode != 0:
            break
    assert r.returncode == 255, "the 10 s certificate never expired"
    info = cert_info(key + "-cert.pub")
    assert re.search(r"Serial: (\d+)", info).group(1) != serial
    assert re.search(r"Valid: from \S+ to (\S+)", info).group(1) > valid_to
    r = ssh()
    assert r.returncode == 0 and r.stdout.strip() == "root", (r.stderr, s.log())
