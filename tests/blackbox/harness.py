"""Black-box harness for latchd (helpers; fixtures are in conftest.py): starts the real daemon on free loopback ports with an inline
config written to the test's own temp dir, plus real peers (a recording origin, nginx, curl,
raw sockets). Every process a test starts is stopped by the test, by its pid; every socket
operation has a timeout so that a daemon bug fails a test instead of hanging it.

Run with: LATCHD=build/latchd /usr/bin/python3 -m pytest -q tests/blackbox
"""

import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LATCHD = os.environ.get("LATCHD") or str(ROOT / "build" / "latchd")
SOCK_TIMEOUT = 10.0
HEX_RE = re.compile(r"^[0-9a-f]{16,}$", re.I)

LOG_FIELDS = ("time", "request_id", "client_ip", "host", "method", "path", "app", "decision",
              "policy", "email", "sub", "service_token", "status", "bytes_in", "bytes_out",
              "duration_us")


# --------------------------------------------------------------------------------------------
# ports and processes

_PORT_FLOOR, _PORT_SPAN = 12000, 2500   # below the kernel's ephemeral range (32768-60999)
_ports_given = set()


def free_port():
    """A loopback TCP port that was free a moment ago, for a server the test starts next.
    Taken below the ephemeral range, where no client socket's own port can land on it, and
    from a slice of its own for each pytest-xdist worker, so parallel tests never pick the
    same one; never the same twice in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(worker[2:]) if worker[2:].isdigit() else 0
    base = _PORT_FLOOR + (n % 8) * _PORT_SPAN
    for _ in range(200):
        port = base + random.randrange(_PORT_SPAN)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise AssertionError("no free port in this worker's slice")


def wait_port(port, timeout=10.0, proc=None, host="127.0.0.1"):
    """Waits until host:port accepts a TCP connection; fails early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process {proc.pid} exited with {proc.returncode} before "
                                 f"listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.03)
    raise AssertionError(f"nothing accepted on {host}:{port} within {timeout}s")


def stop_pid(proc, sig=signal.SIGTERM, timeout=10.0):
    """Signals one process we started (by its pid) and waits; SIGKILL if it does not exit."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RssSampler:
    """Samples a pid's VmRSS every `interval` seconds in a thread; .max_kib, .samples."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(rss_kib(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)

    @property
    def max_kib(self):
        return max(self.samples) if self.samples else 0


# --------------------------------------------------------------------------------------------
# latchd

class Latchd:
    """One latchd process. `config` is a dict (dumped as YAML) or a YAML string; strings may use
    {port}, {tmp}, {origin} placeholders (str.format). Attributes: port, pid, proc, tmp,
    config_path, requests_log, auth_log, stdout_path, stderr_path."""

    def __init__(self, tmp, config, port=None, extra_ports=(), fmt=None, literal=False):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_ports = list(extra_ports)
        self.config_path = self.tmp / "latch.yaml"
        self.requests_log = self.tmp / "requests.log"
        self.auth_log = self.tmp / "auth.log"
        self.stdout_path = self.tmp / "latchd.stdout"
        self.stderr_path = self.tmp / "latchd.stderr"
        self.fmt = dict(fmt or {})
        self.literal = literal
        self.proc = None
        self.stopped_by_test = False
        self.write_config(config)

    # config ------------------------------------------------------------------------------
    def render(self, config):
        if isinstance(config, str) and self.literal:
            return config
        if isinstance(config, str):
            return config.format(port=self.port, tmp=self.tmp, **self.fmt)
        cfg = dict(config)
        cfg.setdefault("listen", [{"address": f"127.0.0.1:{self.port}"}])
        cfg.setdefault("workers", 2)
        cfg.setdefault("state_dir", str(self.tmp / "state"))
        cfg.setdefault("auth_domain", f"auth.localhost:{self.port}")
        cfg.setdefault("log", {"requests": str(self.requests_log), "auth": str(self.auth_log)})
        return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)

    def write_config(self, config):
        text = self.render(config)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)
        return text

    # process -----------------------------------------------------------------------------
    def start(self, wait=True):
        self.out = open(self.stdout_path, "ab")
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([LATCHD, "--config", str(self.config_path)],
                                     stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        if wait:
            for p in [self.port] + self.extra_ports:
                try:
                    wait_port(p, 15, self.proc)
                except AssertionError as e:
                    raise AssertionError(f"{e}\n--- latchd stderr:\n{self.stderr()}") from None
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self, config):
        self.write_config(config)
        self.signal(signal.SIGHUP)

    def stop(self, timeout=15.0):
        """SIGTERM and wait. Returns the exit status (None when it had to be killed)."""
        self.stopped_by_test = True
        if self.proc is None:
            return None
        rc = stop_pid(self.proc, signal.SIGTERM, timeout)
        self.close_files()
        return rc

    def close_files(self):
        for f in (self.out, self.err):
            if not f.closed:
                f.close()

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    # logs --------------------------------------------------------------------------------
    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, path=None):
        """Parsed JSON objects of the request log (one per complete line; a non-JSON line fails)."""
        path = Path(path or self.requests_log)
        if not path.exists():
            return []
        out = []
        text = path.read_text(errors="replace")
        # a line still being written (a read may see part of a write) is read next time
        lines = text.split("\n")[:-1]
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"request log line is not JSON: {line!r}") from None
        return out

    def wait_log(self, pred, timeout=5.0, path=None):
        """Waits for a request-log entry matching pred; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.log_lines(path):
                if pred(e):
                    return e
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching request log entry; log:\n"
                                     f"{(Path(path or self.requests_log)).read_text() if Path(path or self.requests_log).exists() else '(no file)'}")
            time.sleep(0.05)

    def url(self, host="pub.localhost", path="/"):
        return f"http://{host}:{self.port}{path}"


def bypass_app(name, domains, origin="echo", policy="open"):
    return {"name": name, "domains": list(domains), "origin": origin,
            "policies": [{"name": policy, "decision": "bypass", "include": [{"everyone": {}}]}]}


def block_app(name, domains, origin="echo", policy="closed"):
    return {"name": name, "domains": list(domains), "origin": origin,
            "policies": [{"name": policy, "decision": "block", "include": [{"everyone": {}}]}]}


def allow_app(name, domains, origin="echo", policy="staff"):
    return {"name": name, "domains": list(domains), "origin": origin,
            "policies": [{"name": policy, "decision": "allow",
                          "include": [{"email_domain": "example.com"}]}]}


# --------------------------------------------------------------------------------------------
# a recording origin

class Origin:
    """A threaded HTTP/1.1 origin on loopback that records everything it receives.

    mode: "echo" (answer 200 with JSON describing the request it got), "silent" (read, never
    answer), "close" (accept and close at once), "garbage" (answer non-HTTP bytes).
    delay: seconds to wait before answering. Attributes: port, requests (list of dicts with
    method, target, path, query, version, headers [(name, value)], body), raw (bytes received
    in total), connections."""

    def __init__(self, mode="echo", delay=0.0, body_size=None, framing="length"):
        """framing of its responses: "length" (Content-Length), "chunked", or "close"
        (no length: the body ends when the origin closes the connection)."""
        self.mode, self.delay, self.body_size, self.framing = mode, delay, body_size, framing
        self.trailer = b"X-Trailer: t\r\n"  # a chunked response's trailer section (field lines)
        self.requests = []
        self.raw = bytearray()
        self.total = 0
        self.connections = 0
        self.errors = []
        self.lock = threading.Lock()
        self.request_seen = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns = []
        self.closing = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _recv(self, c, buf):
        d = c.recv(65536)
        if d:
            with self.lock:
                self.total += len(d)
                if len(self.raw) < (16 << 20):
                    self.raw += d
        return d

    def _serve(self, c):
        c.settimeout(30)
        buf = bytearray()
        try:
            if self.mode == "close":
                c.close()
                return
            while True:
                while b"\r\n\r\n" not in buf:
                    d = self._recv(c, buf)
                    if not d:
                        return
                    buf += d
                    if self.mode == "garbage" and buf:
                        c.sendall(b"this is not http\r\n\r\n")
                        c.close()
                        return
                head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                buf = bytearray(rest)
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = []
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers.append((k, v.strip()))
                hmap = {k.lower(): v for k, v in headers}
                body = bytearray()
                sha = hashlib.sha256()
                nbody = 0
                if "content-length" in hmap:
                    left = int(hmap["content-length"])
                    while left:
                        if not buf:
                            d = self._recv(c, buf)
                            if not d:
                                return
                            buf += d
                        chunk = buf[:left]
                        sha.update(chunk)
                        nbody += len(chunk)
                        left -= len(chunk)
                        if len(body) < (1 << 20):
                            body += chunk[: (1 << 20) - len(body)]
                        del buf[: len(chunk)]
                elif "chunked" in hmap.get("transfer-encoding", "").lower():
                    while True:
                        while b"\r\n" not in buf:
                            d = self._recv(c, buf)
                            if not d:
                                return
                            buf += d
                        line, _, rest = bytes(buf).partition(b"\r\n")
                        buf = bytearray(rest)
                        size = int(line.split(b";")[0], 16)
                        if size == 0:
                            while not buf.startswith(b"\r\n") and b"\r\n\r\n" not in buf:
                                d = self._recv(c, buf)
                                if not d:
                                    return
                                buf += d
                            if buf.startswith(b"\r\n"):
                                buf = buf[2:]
                            else:
                                buf = buf[buf.index(b"\r\n\r\n") + 4:]
                            break
                        while len(buf) < size + 2:
                            d = self._recv(c, buf)
                            if not d:
                                return
                            buf += d
                        chunk = buf[:size]
                        sha.update(chunk)
                        nbody += size
                        if len(body) < (1 << 20):
                            body += chunk[: (1 << 20) - len(body)]
                        buf = buf[size + 2:]
                path, _, query = target.partition("?")
                req = {"method": method, "target": target, "path": path,
                       "query": query if "?" in target else None, "version": version,
                       "headers": headers, "hmap": hmap, "body": bytes(body),
                       "body_bytes": nbody, "body_sha256": sha.hexdigest(), "time": time.time()}
                with self.lock:
                    self.requests.append(req)
                self.request_seen.set()
                if self.mode == "silent":
                    while self._recv(c, buf):
                        pass
                    return
                if self.delay:
                    time.sleep(self.delay)
                if self.body_size is not None:
                    payload = b"x" * self.body_size
                else:
                    payload = json.dumps({k: req[k] for k in
                                          ("method", "target", "path", "query", "version",
                                           "headers", "body_bytes", "body_sha256")}).encode()
                resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"X-Origin: recording\r\n")
                if self.framing == "chunked":
                    parts = [payload[i:i + 7] for i in range(0, len(payload), 7)]
                    c.sendall(resp + b"Transfer-Encoding: chunked\r\n\r\n" +
                              b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) +
                              b"0\r\n" + self.trailer + b"\r\n")
                elif self.framing == "close":
                    c.sendall(resp + b"Connection: close\r\n\r\n" + payload)
                    return
                else:
                    c.sendall(resp + b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
                if hmap.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def received(self):
        with self.lock:
            return bytes(self.raw)

    def paths(self):
        with self.lock:
            return [r["target"] for r in self.requests]

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()


# --------------------------------------------------------------------------------------------
# nginx (a real origin for big downloads; the bench has its own)

class Nginx:
    def __init__(self, prefix, server_block, port=None):
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        self.port = port or free_port()
        conf = f"""
user root;
worker_processes 1;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{self.port};
        {server_block}
    }}
}}
"""
        (self.prefix / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-p", str(self.prefix), "-c",
                                      str(self.prefix / "nginx.conf")],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.prefix / "stderr", "wb"))
        wait_port(self.port, 10, self.proc)

    def stop(self):
        stop_pid(self.proc, signal.SIGQUIT, 10)
        stop_pid(self.proc, signal.SIGTERM, 5)


# --------------------------------------------------------------------------------------------
# clients: curl and raw sockets

class CurlResult:
    def __init__(self, rc, status, headers, body, stderr, header_blocks):
        self.rc, self.status, self.headers, self.body, self.stderr = rc, status, headers, body, stderr
        self.header_blocks = header_blocks

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<curl rc={self.rc} status={self.status} body={self.body[:300]!r} err={self.stderr[-300:]!r}>"


def curl(url, *args, timeout=20, data_file=None):
    """Runs real curl; returns CurlResult (headers of the final response, lowercase names)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
        cmd = ["curl", "-sS", "--max-time", str(timeout), "-D", hfile, "-o", bfile,
               "-w", "%{http_code}", *args, url]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        body = open(bfile, "rb").read() if os.path.exists(bfile) else b""
        blocks = []
        if os.path.exists(hfile):
            raw = open(hfile, "rb").read().decode("latin-1")
            for block in raw.split("\r\n\r\n"):
                if block.strip():
                    lines = block.split("\r\n")
                    hs = {}
                    for ln in lines[1:]:
                        k, _, v = ln.partition(":")
                        k = k.strip().lower()
                        hs[k] = (hs[k] + ", " + v.strip()) if k in hs else v.strip()
                    blocks.append((lines[0], hs))
        headers = blocks[-1][1] if blocks else {}
        try:
            status = int(p.stdout.decode()[-3:])
        except ValueError:
            status = 0
        return CurlResult(p.returncode, status, headers, body, p.stderr.decode(errors="replace"),
                          blocks)


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status, self.reason, self.headers, self.body, self.raw_head = (
            status, reason, headers, body, raw_head)

    def header(self, name):
        name = name.lower()
        vals = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(vals) if vals else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class RawConn:
    """A raw TCP client with a buffered reader of HTTP/1.1 responses."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCK_TIMEOUT, sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed before a full response head; got {bytes(self.buf)[:500]!r}")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        return status, reason, headers, head

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"closed with {len(self.buf)} of {n} body bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed in a chunk line")
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    def read_response(self, head_request=False, skip_1xx=True):
        while True:
            status, reason, headers, raw = self.read_head()
            if 100 <= status < 200 and status != 101 and skip_1xx:
                continue
            break
        hmap = {}
        for k, v in headers:
            hmap.setdefault(k.lower(), v)
        if head_request or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.read_line().split(b";")[0], 16)
                if size == 0:
                    while self.read_line() != b"":
                        pass
                    break
                body += self.read_exact(size)
                self.read_exact(2)
            body = bytes(body)
        elif "content-length" in hmap:
            body = self.read_exact(int(hmap["content-length"]))
        else:
            while self._fill():
                pass
            body = bytes(self.buf)
            self.buf = bytearray()
        return Response(status, reason, headers, body, raw)

    def closed_within(self, timeout):
        """True when the peer closes (EOF or reset) within `timeout` seconds (data discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not d:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def haproxy_show_stat(sock_path, timeout=5):
    """HAProxy's `show stat` through its stats socket: one dict per proxy/server row, keyed by
    the CSV header's names (pxname, svname, scur, stot, wretr, ...). OSError when unreachable."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(b"show stat\n")
        data = b""
        while d := s.recv(65536):
            data += d
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",") if lines else []
    return [dict(zip(head, ln.split(","))) for ln in lines[1:] if ln.strip()]


def get(port, path="/", host="pub.localhost", headers=(), method="GET", body=None, timeout=10):
    """One request on a fresh raw connection (Connection: close); returns Response."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}" if ":" not in host else f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    with RawConn(port, timeout=timeout) as c:
        c.send(data)
        return c.read_response(head_request=(method == "HEAD"))


def repeating_file(path, size, block_len=1048573, seed=b"latch"):
    """Writes `size` bytes of a non-trivial, non-aligned repeating pattern; returns sha256 hex."""
    blk = bytearray()
    h = hashlib.sha256(seed)
    while len(blk) < block_len:
        h = hashlib.sha256(h.digest())
        blk += h.digest()
    blk = bytes(blk[:block_len])
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            part = blk[: min(left, block_len)]
            f.write(part)
            sha.update(part)
            left -= len(part)
    return sha.hexdigest()


def have(tool):
    return shutil.which(tool) is not None


def start_shared(tmp, config):
    """For module-scoped daemons (corpus tests): start one; finish_shared() stops it."""
    d = Latchd(tmp, config).start()
    return d


def finish_shared(d):
    died = not d.alive()
    rc = d.stop(timeout=20) if not died else d.proc.returncode
    if died:
        pytest.fail(f"shared latchd {d.pid} died during the module (status {rc})\n"
                    f"--- stderr:\n{d.stderr()[-3000:]}")


# --------------------------------------------------------------------------------------------
# example configurations with their files

# Where the examples put the files they name; tests make each one under a temporary root.
SYSTEM_DIRS = ("/etc/latch/", "/var/lib/latch", "/var/log/latch/")


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


def materialize(text, root, pem, make_files=True):
    """The configuration with its system paths moved under `root`, and (make_files) the files
    it names made there with the content their key calls for: pem is (certificate, key) bytes,
    standing in for every certificate, key and CA."""
    for prefix in SYSTEM_DIRS:
        text = text.replace(prefix, str(root) + prefix)
    if not make_files:
        return text
    cert, key = pem
    contents = {
        "cert": cert, "client_ca": cert, "ca_file": cert, "key": key,
        "client_secret_file": b"an-oidc-client-secret\n",
        "logo": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
        "store_password_file": b"a-redis-password\n",
        "store_key_file": base64.b64encode(os.urandom(32)) + b"\n",
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
