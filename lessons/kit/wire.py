"""The WebSocket protocol by hand: a raw handshake and raw frames on a plain TCP socket.

Real clients hide both. A lesson cell uses these to show what travels on the wire, or to
send what no client library would (a text frame that is not valid UTF-8).

>>> with raw_handshake(server.ws_url("/ws")) as raw:
...     print(raw.response)             # the 101 and its headers
...     print(raw.read_frame())         # the first frame the server sends
...     raw.send_frame(TEXT, b"hi")     # a masked client frame
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from lessons.kit.timing import scaled

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455, section 1.3
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_NAMES = {TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``Sec-WebSocket-Key: key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade_request(url: str, key: str) -> str:
    """The HTTP/1.1 request that asks the server at ``url`` to switch to WebSocket."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


class Frame(NamedTuple):
    """One frame: its first two bytes in hex (FIN, opcode, mask, length), kind, payload."""

    head: str
    kind: str
    payload: bytes


@dataclass
class RawConnection:
    """A WebSocket opened by hand: the request sent, the response head, then raw frames."""

    sock: socket.socket
    key: str
    request: str
    response: str
    _data: bytes = field(default=b"", repr=False)

    @property
    def status(self) -> int:
        return int(self.response.split(" ", 2)[1])

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Send one final frame, masked as every client frame must be (payload < 126 bytes)."""
        if len(payload) >= 126:
            raise ValueError("this codec sends short frames only (under 126 bytes)")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _read(self, size: int) -> bytes:
        while len(self._data) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the TCP connection")
            self._data += chunk
        taken, self._data = self._data[:size], self._data[size:]
        return taken

    def read_frame(self) -> Frame:
        """The next frame from the server (server frames are never masked)."""
        head = self._read(2)
        length = head[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(self._read(2 if length == 126 else 8), "big")
        opcode = head[0] & 0x0F
        return Frame(head.hex(" "), _NAMES.get(opcode, hex(opcode)), self._read(length))

    def close_code(self) -> int:
        """Read frames until the server's close frame; its code (1006 if none came)."""
        try:
            while (frame := self.read_frame()).kind != "close":
                pass
        except (ConnectionError, TimeoutError):
            return 1006
        return int.from_bytes(frame.payload[:2], "big")


def open_handshake(sock: socket.socket, url: str) -> RawConnection:
    """Send the upgrade request for ``url`` on the connected ``sock``; read the answer's head."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = upgrade_request(url, key)
    sock.sendall(request.encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"{url} closed during the handshake: {received!r}")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return RawConnection(sock, key, request.rstrip(), head.decode(), rest)


@contextmanager
def raw_handshake(url: str, timeout: float = 5.0) -> Iterator[RawConnection]:
    """Open ``url`` (``ws://host:port/path``) by hand on a TCP socket, closed on exit."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), scaled(timeout)) as sock:
        yield open_handshake(sock, url)
