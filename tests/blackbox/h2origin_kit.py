"""A real HTTP/2 origin for the tests, on Debian's python3-h2 (h2c with prior knowledge, or TLS
with ALPN h2): one thread per connection, every stream answered as its path says, with HTTP/2
flow control respected both ways (it sends only what latchd's windows allow). It records the
connections it accepted, the requests (pseudo-headers, headers, body digest, trailers) and the
most streams open at once on one connection.

Paths:
  /echo            200, JSON of the request (method, path, authority, scheme, headers, body
                   length and sha256, trailers), with content-length
  /big/N           N bytes (repeating_file's pattern) without content-length, then trailers
                   x-sha256 (of the body) and x-len
  /trailers        "hello" without content-length, then trailers (x-t1, x-t2 and a few fields a
                   trailer section must not carry: content-length, connection-ish)
  /delay/MS        waits MS milliseconds, then as /echo
  /reset           resets the stream (RST_STREAM INTERNAL_ERROR) as soon as the request arrived
  /reset-mid       a head and 1000 bytes, then RST_STREAM
  /die-mid         a head and 1000 bytes, then closes the connection
  /goaway          GOAWAY (last stream: this one minus 2), then answers this one as /echo
"""

import hashlib
import json
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.errors

from harness import free_port


def pattern(n, seed=b"latch-h2"):
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class H2Origin:
    def __init__(self, tls_cert=None):
        self.port = free_port()
        self.lock = threading.Lock()
        self.connections = 0
        self.max_open_streams = 0
        self.requests = []
        self.sent = {}  # path -> body bytes sent
        self.stop_ev = threading.Event()
        self.ctx = None
        if tls_cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls_cert)
            self.ctx.set_alpn_protocols(["h2"])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, scheme="h2c"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.sock.close()
        for c in list(self.conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.ctx:
                sock.settimeout(10)
                sock = self.ctx.wrap_socket(sock, server_side=True)
            sock.settimeout(0.02)
            _Conn(self, sock).run()
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


class _Stream:
    def __init__(self, sid, headers):
        self.sid = sid
        self.headers = headers
        self.body = hashlib.sha256()
        self.body_len = 0
        self.trailers = []
        self.ended = False
        self.out = None        # bytes left to send
        self.out_trailers = None
        self.due = 0.0
        self.action = None


class _Conn:
    def __init__(self, origin, sock):
        self.o, self.sock = origin, sock
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        self.dead = False

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.settimeout(10)
            self.sock.sendall(data)
            self.sock.settimeout(0.02)

    def run(self):
        self.h2.initiate_connection()
        self.flush()
        while not self.o.stop_ev.is_set() and not self.dead:
            try:
                data = self.sock.recv(65536)
                if not data:
                    return
                for ev in self.h2.receive_data(data):
                    self.event(ev)
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except h2.exceptions.ProtocolError:
                return
            self.progress()
            if self.dead:
                return
            self.flush()

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            st = _Stream(ev.stream_id, ev.headers)
            self.streams[ev.stream_id] = st
            with self.o.lock:
                self.o.max_open_streams = max(self.o.max_open_streams, len(self.streams))
            if ev.stream_ended:
                self.ended(st)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st:
                st.body.update(ev.data)
                st.body_len += len(ev.data)
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            st = self.streams.get(ev.stream_id)
            if st:
                st.trailers = ev.headers
                if ev.stream_ended:
                    self.ended(st)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st and not st.ended:
                self.ended(st)
        elif isinstance(ev, h2.events.StreamReset):
            self.streams.pop(ev.stream_id, None)

    def ended(self, st):
        st.ended = True
        h = dict(st.headers)
        path = h.get(":path", "")
        rec = {"method": h.get(":method"), "path": path, "authority": h.get(":authority"),
               "scheme": h.get(":scheme"), "headers": [list(x) for x in st.headers],
               "body_len": st.body_len, "body_sha256": st.body.hexdigest(),
               "trailers": [list(x) for x in st.trailers]}
        with self.o.lock:
            self.o.requests.append(rec)
        body = json.dumps(rec).encode()
        if path.startswith("/big/"):
            n = int(path.split("/")[2])
            data = pattern(n)
            self.h2.send_headers(st.sid, [(":status", "200"), ("content-type", "application/octet-stream")])
            st.out = data
            st.out_trailers = [("x-sha256", hashlib.sha256(data).hexdigest()), ("x-len", str(n))]
        elif path == "/trailers":
            self.h2.send_headers(st.sid, [(":status", "200"), ("content-type", "text/plain")])
            st.out = b"hello"
            st.out_trailers = [("x-t1", "a"), ("x-t2", "b"), ("x-forwarded-for", "6.6.6.6"),
                               ("set-cookie", "CF_Authorization=stolen")]
        elif path.startswith("/delay/"):
            st.due = time.monotonic() + int(path.split("/")[2].split("?")[0]) / 1000
            st.action = body
        elif path == "/reset":
            self.h2.reset_stream(st.sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.streams.pop(st.sid, None)
        elif path in ("/reset-mid", "/die-mid"):
            self.h2.send_headers(st.sid, [(":status", "200")])
            self.h2.send_data(st.sid, b"x" * 1000)
            if path == "/reset-mid":
                self.h2.reset_stream(st.sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
                self.streams.pop(st.sid, None)
            else:
                self.flush()
                self.dead = True
        elif path == "/goaway":
            # GOAWAY (NO_ERROR) naming this stream the last one served, written by hand (h2
            # would refuse to answer after its own close_connection); then the answer
            self.flush()
            self.sock.sendall(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" +
                              st.sid.to_bytes(4, "big") + b"\x00\x00\x00\x00")
            self.answer(st, body)
        else:
            self.answer(st, body)

    def answer(self, st, body):
        self.h2.send_headers(st.sid, [(":status", "200"), ("content-type", "application/json"),
                                      ("content-length", str(len(body))), ("x-origin", "h2")])
        st.out = b"" if dict(st.headers).get(":method") == "HEAD" else body
        st.out_trailers = None

    def progress(self):
        now = time.monotonic()
        for sid, st in list(self.streams.items()):
            if st.action is not None and now >= st.due:
                body, st.action = st.action, None
                self.answer(st, body)
            if st.out is None:
                continue
            while st.out:
                try:
                    room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
                except h2.exceptions.StreamClosedError:
                    self.streams.pop(sid, None)
                    break
                if room <= 0:
                    break
                chunk, st.out = st.out[:room], st.out[room:]
                self.h2.send_data(sid, chunk)
                path = dict(st.headers).get(":path", "")
                with self.o.lock:
                    self.o.sent[path] = self.o.sent.get(path, 0) + len(chunk)
            if st.out == b"" and sid in self.streams:
                if st.out_trailers:
                    self.h2.send_headers(sid, st.out_trailers, end_stream=True)
                else:
                    self.h2.end_stream(sid)
                self.streams.pop(sid, None)
