"""A real Redis for the cluster black-box tests (test_cluster.py, SPEC.md §10): `redis-server`
started on a free loopback port in the test's own temp dir with no persistence (`--save ''
--appendonly no`), stopped and started again on the same port (empty, as after a crash), and a
small RESP2 client over a raw socket (no Python Redis package), used to wait for PING and to look
at, or plant garbage in, what the latchd nodes keep there. Only the process a test started is
ever signalled, by its pid."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import free_port, stop_pid

REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


class RespError(Exception):
    """An error reply (-ERR …, -WRONGTYPE …) from Redis."""


class Resp:
    """One RESP2 connection. .cmd("SET", "k", b"v") sends one command and returns its reply:
    str for simple strings, int, bytes (or None) for bulk strings, list for arrays; an error
    reply raises RespError. Every read has a timeout."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("redis closed the connection")
            self.buf += d
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("redis closed the connection")
            self.buf += d
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.reply() for _ in range(n)]
        raise AssertionError(f"unexpected RESP line {line!r}")

    def cmd(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Redis:
    """One redis-server on 127.0.0.1:port, no persistence, its files in `tmp`.
    .url (for latchd's `store:`), .start(), .stop(), .restart(), .cmd(*args) (one connection
    per call), .keys() (every key, by SCAN)."""

    def __init__(self, tmp, port=None):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.starts = 0

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None, "redis already running"
        self.starts += 1
        log = open(self.tmp / f"redis-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp), "--daemonize", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except (OSError, EOFError, RespError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on {self.port} did not answer PING within "
                                     f"{timeout}s:\n{self.log()}")
            time.sleep(0.03)

    def log(self):
        p = self.tmp / f"redis-{self.starts}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self, sig=signal.SIGTERM):
        """Stops our redis-server (by pid) and waits; nothing answers on the port afterwards."""
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc, sig, 10)

    def restart(self):
        """Stopped and started again on the same port: empty (no persistence)."""
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cmd(self, *args, timeout=5.0):
        with Resp(self.port, timeout=timeout) as r:
            return r.cmd(*args)

    def keys(self, match="*"):
        out, cursor = [], b"0"
        with Resp(self.port) as r:
            while True:
                cursor, batch = r.cmd("SCAN", cursor, "MATCH", match, "COUNT", 1000)
                out += batch
                if cursor == b"0":
                    return sorted(set(out))

    def type_of(self, key):
        return self.cmd("TYPE", key)


@pytest.fixture
def redis_factory(tmp_path):
    """Factory: redis_factory() starts a redis-server; each is stopped at the end of the test."""
    made = []

    def make(name="redis"):
        r = Redis(tmp_path / f"{name}{len(made)}")
        made.append(r)
        return r.start()

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def redis(redis_factory):
    return redis_factory()
