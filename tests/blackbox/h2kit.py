"""HTTP/2 by hand for the tests: a client of python3-h2 with its own checks off (so it sends
what a hostile client would), and raw frames for what no library sends (floods)."""

import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types and flags (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x1, 0x7, 0x8, 0xb


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def connect(port, tls=False, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname="a.localhost")
        assert s.selected_alpn_protocol() == "h2"
    return s


class Client:
    """A client connection; `events` collects what the server sent."""

    def __init__(self, port, tls=False, settings=None):
        self.sock = connect(port, tls)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, headers, body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def pump(self, until, timeout=20):
        """Reads until until(self) is true (or the connection closes); returns it."""
        deadline = time.monotonic() + timeout
        while not until(self) and not self.closed and time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                break
            try:
                evs = self.conn.receive_data(data)
            except Exception as e:  # the server broke the protocol: say so in the test
                raise AssertionError(f"bad HTTP/2 from the server: {e!r}")
            for ev in evs:
                self.events.append(ev)
                if isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            try:
                self.flush()
            except OSError:
                self.closed = True
        return until(self)

    def ended(self, sid):
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid
                   for e in self.events) or self.goaway() is not None

    def response(self, sid, timeout=20):
        """(status, {name: value}, body, reset error code or None) of stream sid."""
        self.pump(lambda c: c.ended(sid), timeout)
        status, headers, body, reset = None, {}, b"", None
        for e in self.events:
            if getattr(e, "stream_id", None) != sid:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                headers = {k.decode(): v.decode() for k, v in e.headers}
                status = int(headers[":status"])
            elif isinstance(e, h2.events.TrailersReceived):
                headers.update({k.decode(): v.decode() for k, v in e.headers})
            elif isinstance(e, h2.events.DataReceived):
                body += e.data
            elif isinstance(e, h2.events.StreamReset):
                reset = e.error_code
        return status, headers, body, reset

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e.error_code
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def get(host, path="/", method="GET", extra=()):
    return [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", host.encode()),
            (b":path", path.encode())] + [(k.encode() if isinstance(k, str) else k,
                                           v.encode() if isinstance(v, str) else v) for k, v in extra]


def read_frames(sock, until, timeout=20):
    """Raw frames from sock until until(frames) (or EOF); returns [(type, flags, stream, payload)]."""
    frames, buf = [], b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(frames):
        try:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        except OSError:
            data = b""
        if not data:
            frames.append(("eof", 0, 0, b""))
            break
        buf += data
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]))
            buf = buf[9 + n:]
    return frames


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big")
    return None
