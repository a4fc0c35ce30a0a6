"""A raw WebSocket client on a plain socket: for clients no library would let you write.

Oversized or unfinished handshakes, frames a browser never sends, a peer that stops
reading or answering: the hostile-client tests and the implementation measurements speak
to servers with these. Every read has a timeout; every socket is closed on exit.
"""

from __future__ import annotations

import socket
import struct
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from lessons.kit.timing import scaled
from lessons.kit.wire import CLOSE, frame, new_key, upgrade_request


def handshake_request(url: str, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a WebSocket upgrade request for ``url`` (its query string included)."""
    return upgrade_request(url, new_key(), headers).encode()


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
    sock.sendall(handshake_request(url, headers))
    head = read_head(sock, timeout=5.0)
    if status_of(head) != 101:
        raise ConnectionError(f"{url} refused the handshake: {head!r}")


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason.encode())


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> int | None:
    """Read server frames until a close frame (its code; 1005 if it has none) or the end of
    the connection without one (1006); None if neither came within ``timeout`` seconds."""
    buffer = b""
    deadline = time.monotonic() + scaled(timeout)
    previous = sock.gettimeout()
    try:
        while True:
            while len(buffer) >= 2:
                size, start = buffer[1] & 0x7F, 2
                if size == 126:
                    if len(buffer) < 4:
                        break
                    size, start = struct.unpack("!H", buffer[2:4])[0], 4
                elif size == 127:
                    if len(buffer) < 10:
                        break
                    size, start = struct.unpack("!Q", buffer[2:10])[0], 10
                if len(buffer) < start + size:
                    break
                if buffer[0] & 0x0F == CLOSE:
                    body = buffer[start : start + size]
                    return struct.unpack("!H", body[:2])[0] if len(body) >= 2 else 1005
                buffer = buffer[start + size :]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                return None
            except ConnectionResetError:
                return 1006
            if not chunk:
                return 1006
            buffer += chunk
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
