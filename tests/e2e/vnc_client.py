"""A minimal client of the gateway's VM console proxy (GET /v1/console/websocket?token=...):
the WebSocket opening handshake and frames (RFC 6455, client side, masked), then the RFB
handshake as a VNC viewer does it (RFC 6143: version 3.8, security type None, ClientInit), up
to ServerInit, and a framebuffer update request. What noVNC does in the browser, in Python's
standard library only, for tests that open many consoles or check the refusals.

    c = VncClient.open(port, ticket["websocket"])   # raises WsRefused on a non-101 answer
    width, height, name = c.rfb_handshake()
    rect_bytes = c.request_update(width, height)
    c.close()
"""

import base64
import hashlib
import os
import socket
import struct

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsRefused(Exception):
    """The gateway answered the WebSocket request with 'status' (not 101)."""

    def __init__(self, status, headers, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status, self.headers, self.body = status, headers, body


class VncClient:
    def __init__(self, sock, leftover):
        self.sock = sock
        self.buf = bytearray(leftover)  # bytes of frames not yet parsed
        self.data = bytearray()  # payload bytes received, not yet consumed
        self.closed_with = None  # (code, reason) of the server's close frame

    @classmethod
    def open(cls, port, path, origin=None, host="127.0.0.1", timeout=15, protocol="binary"):
        sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", "User-Agent: nubo-e2e vnc_client"]
        if origin:
            lines.append(f"Origin: {origin}")
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(4096)
            if not chunk:
                break
            raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
        headers = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 101:
            body = rest
            n = int(headers.get("content-length", "0") or 0)
            while len(body) < n:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                body += chunk
            sock.close()
            raise WsRefused(status, headers, body.decode("utf-8", "replace"))
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            sock.close()
            raise WsRefused(101, headers, "wrong Sec-WebSocket-Accept")
        c = cls(sock, rest)
        c.headers = headers
        return c

    # --- frames ---

    def send(self, payload, opcode=0x2):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the gateway closed the connection")
        self.buf += chunk

    def _frame(self):
        """Reads one frame; appends a data frame's payload to self.data."""
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ValueError("the server masked a frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill()
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        op = b0 & 0x0F
        if op in (0x0, 0x1, 0x2):
            self.data += payload
        elif op == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.closed_with = (code, payload[2:].decode("utf-8", "replace"))
            raise EOFError(f"the gateway closed the WebSocket: {self.closed_with}")
        elif op == 0x9:
            self.send(payload, 0xA)

    def recv_exact(self, n):
        while len(self.data) < n:
            self._frame()
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    # --- RFB ---

    def rfb_handshake(self, shared=True):
        """Version 3.8, security None, ClientInit; returns (width, height, desktop name)."""
        version = self.recv_exact(12)
        if version != b"RFB 003.008\n":
            raise ValueError(f"unexpected RFB version {version!r}")
        self.send(b"RFB 003.008\n")
        (count,) = self.recv_exact(1)
        if count == 0:
            (n,) = struct.unpack("!I", self.recv_exact(4))
            raise ValueError(f"the gateway refused: {self.recv_exact(n).decode()}")
        types = self.recv_exact(count)
        if 1 not in types:
            raise ValueError(f"security type None not offered: {list(types)}")
        self.send(b"\x01")
        (result,) = struct.unpack("!I", self.recv_exact(4))
        if result != 0:
            (n,) = struct.unpack("!I", self.recv_exact(4))
            raise ValueError(f"security result {result}: {self.recv_exact(n).decode()}")
        self.send(b"\x01" if shared else b"\x00")
        width, height = struct.unpack("!HH", self.recv_exact(4))
        self.pixel_format = self.recv_exact(16)
        (n,) = struct.unpack("!I", self.recv_exact(4))
        name = self.recv_exact(n).decode("utf-8", "replace")
        return width, height, name

    def request_update(self, width, height):
        """Asks for the whole screen in Raw encoding; returns the bytes of the pixels of the
        first FramebufferUpdate's rectangles (all of them Raw)."""
        self.send(struct.pack("!BBHi", 2, 0, 1, 0))  # SetEncodings: Raw only
        self.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))
        while True:
            (kind,) = self.recv_exact(1)
            if kind == 0:
                break
            if kind == 2:  # Bell
                continue
            raise ValueError(f"unexpected server message {kind}")
        _, nrects = struct.unpack("!BH", self.recv_exact(3))
        bpp = self.pixel_format[0] // 8
        pixels = bytearray()
        for _ in range(nrects):
            x, y, w, h, enc = struct.unpack("!HHHHi", self.recv_exact(12))
            if enc != 0:
                raise ValueError(f"rectangle in encoding {enc}, not Raw")
            pixels += self.recv_exact(w * h * bpp)
        return bytes(pixels)

    def close(self):
        try:
            self.send(struct.pack("!H", 1000), 0x8)
        except OSError:
            pass
        self.sock.close()
