"""Helpers for lesson 02's tests: HTTP calls from async tests, polling a condition (the kit's), a
client that stops reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from lessons.kit import eventually, scaled


async def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """``(status, decoded JSON body)`` of one HTTP request, run in a thread."""

    def call() -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=scaled(5)) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    return await asyncio.to_thread(call)


@pytest.fixture
def http_call() -> Callable[..., Awaitable[tuple[int, Any]]]:
    return http


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    return eventually


@pytest.fixture
def stalled_client() -> Iterator[Callable[[int, str], socket.socket]]:
    """``stalled_client(port, path)``: a raw socket that completes a WebSocket handshake,
    waits for the first bytes of data, then never reads again (closed after the test)."""
    opened: list[socket.socket] = []

    def connect(port: int, path: str) -> socket.socket:
        sock = socket.socket()
        opened.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(scaled(5))
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1024)
            if not chunk:
                raise ConnectionError(f"the server closed the connection: {received!r}")
            received += chunk
        assert received.startswith(b"HTTP/1.1 101"), received
        return sock

    yield connect
    for sock in opened:
        sock.close()
