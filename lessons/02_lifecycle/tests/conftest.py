"""Fixtures for lesson 02's tests: HTTP calls from async tests, a client that stops reading."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from lessons.kit import scaled
from lessons.kit import stalled_client as kit_stalled_client


async def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """``(status, decoded JSON body)`` of one HTTP request."""
    async with httpx.AsyncClient(timeout=scaled(5)) as client:
        response = await client.request(method, url, json=body)
    return response.status_code, response.json()


@pytest.fixture
def http_call() -> Callable[..., Awaitable[tuple[int, Any]]]:
    return http


@pytest.fixture
def stalled_socket() -> Iterator[Callable[[int, str], socket.socket]]:
    """``stalled_socket(port, path)``: the kit's stalled client, once the server has started
    sending to it (closed after the test)."""
    with ExitStack() as stack:

        def connect(port: int, path: str) -> socket.socket:
            sock = stack.enter_context(kit_stalled_client(f"ws://127.0.0.1:{port}{path}"))
            sock.recv(1)  # the first byte of data: the server is sending now
            return sock

        yield connect
