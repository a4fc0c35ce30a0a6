"""Fixtures for lesson 05: a Redis for the module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lessons.kit.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One Redis (``REDIS_URL``, or a redis-server started on a free port) per test module."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's Redis, flushed: each test starts from an empty stream."""
    client = redis_server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill and restart (skipped with REDIS_URL)."""
    server = RedisServer()
    if not server.managed:
        pytest.skip("REDIS_URL is set: this test needs a Redis it may kill")
    with server:
        yield server
