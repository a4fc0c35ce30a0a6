"""The WebSocket protocol by hand: a raw handshake and raw frames on a plain TCP socket.

Real clients hide both. A lesson cell uses these to show what travels on the wire, or to
send what no client library would (a text frame that is not valid UTF-8); the hostile-client
tests and the implementation measurements send oversized or unfinished handshakes and
frames a browser never sends, or stop reading. Every read has a timeout; every socket is
closed on exit.

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
import struct
import time
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


def upgrade_request(url: str, key: str = "", headers: dict[str, str] | None = None) -> str:
    """The HTTP/1.1 request that asks the server at ``url`` to switch to WebSocket (with a
    fresh key unless ``key`` is given)."""
    key = key or new_key()
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
    deadline: float | None = None  # time.monotonic() after which a read times out

    @property
    def status(self) -> int:
        return int(self.response.split(" ", 2)[1])

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Send one final frame, masked as every client frame must be."""
        self.sock.sendall(frame(opcode, payload))

    def _read(self, size: int) -> bytes:
        while len(self._data) < size:
            if self.deadline is not None:
                self.sock.settimeout(max(0.001, self.deadline - time.monotonic()))
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
        """Read frames until the server's close frame; its code (1005 if it has none; 1006
        if the connection ended, or went quiet past its timeout, without one)."""
        try:
            return self.read_close()
        except TimeoutError:
            return 1006

    def read_close(self) -> int:
        """``close_code``, but TimeoutError when nothing more came in time."""
        try:
            while (frame := self.read_frame()).kind != "close":
                pass
        except ConnectionError:  # the end of the connection, or a reset
            return 1006
        return int.from_bytes(frame.payload[:2], "big") if len(frame.payload) >= 2 else 1005


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
def raw_socket(
    url: str, *, rcvbuf: int | None = None, timeout: float = 5.0
) -> Iterator[socket.socket]:
    """A TCP connection to ``url``'s host and port, closed on exit (nothing sent yet)."""
    parts = urllib.parse.urlsplit(url)
    with socket.socket() as sock:
        if rcvbuf is not None:  # before connect: the window is agreed in the handshake
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(scaled(timeout))
        sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        yield sock


@contextmanager
def raw_handshake(url: str, timeout: float = 5.0) -> Iterator[RawConnection]:
    """Open ``url`` (``ws://host:port/path``) by hand on a TCP socket, closed on exit."""
    with raw_socket(url, timeout=timeout) as sock:
        yield open_handshake(sock, url)


def read_head(sock: socket.socket, timeout: float = 2.0) -> bytes | None:
    """The HTTP response head the server sent (up to the blank line, or to EOF), or None
    if it sent nothing within ``timeout`` seconds. What follows the head stays unread."""
    received = b""
    previous = sock.gettimeout()
    deadline = time.monotonic() + scaled(timeout)
    try:
        while (end := received.find(b"\r\n\r\n")) < 0 and time.monotonic() < deadline:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            peeked = sock.recv(1 << 16, socket.MSG_PEEK)
            if not peeked:
                break
            end = peeked.find(b"\r\n\r\n")
            received += sock.recv(len(peeked) if end < 0 else end + 4)
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        sock.settimeout(previous)
    return received.split(b"\r\n\r\n", 1)[0] or None


def status_of(head: bytes | None) -> int | None:
    """The status code in a response head: ``HTTP/1.1 101 ...`` -> 101; None for no answer."""
    if not head:
        return None
    fields = head.split(b"\r\n", 1)[0].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def upgrade(sock: socket.socket, url: str, headers: dict[str, str] | None = None) -> None:
    """Send the handshake for ``url`` on ``sock``; ConnectionError unless the answer is 101."""
    sock.sendall(upgrade_request(url, headers=headers).encode())
    head = read_head(sock, timeout=5.0)
    if status_of(head) != 101:
        raise ConnectionError(f"{url} refused the handshake: {head!r}")


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason.encode())


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> int | None:
    """Read server frames until a close frame (its code; 1005 if it has none) or the end of
    the connection without one (1006); None if neither came within ``timeout`` seconds."""
    previous = sock.gettimeout()
    raw = RawConnection(sock, "", "", "", deadline=time.monotonic() + scaled(timeout))
    try:
        return raw.read_close()
    except TimeoutError:
        return None
    finally:
        sock.settimeout(previous)


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True if the server ends the connection (EOF or reset) within ``timeout`` seconds,
    whatever it sends before that."""
    deadline = time.monotonic() + scaled(timeout)
    previous = sock.gettimeout()
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                if not sock.recv(1 << 16):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False
    finally:
        sock.settimeout(previous)
