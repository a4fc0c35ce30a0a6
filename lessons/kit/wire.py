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
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
_NAMES = {TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``Sec-WebSocket-Key: key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(url: str, key: str, headers: dict[str, str] | None = None) -> str:
    """The HTTP/1.1 request that asks the server at ``url`` to switch to WebSocket."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One client frame, masked as RFC 6455 requires of every client frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


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
        """Send one final frame, masked as every client frame must be."""
        self.sock.sendall(frame(opcode, payload))

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
    key = new_key()
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
