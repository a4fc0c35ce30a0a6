"""Fixtures for lesson 05: a Redis for the module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lessons.kit.redis_server import RedisServer


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """One Redis per test module (``REDIS_URL``, or a redis-server on a free port): not the
    root ``redis_server``, which is one per test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(module_redis: RedisServer) -> str:
    """The module's Redis, flushed: each test starts from an empty stream."""
    client = module_redis.client()
    try:
        client.flushdb()
    finally:
        client.close()
    return module_redis.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill and restart (skipped with REDIS_URL)."""
    server = RedisServer()
    if not server.managed:
        pytest.skip("REDIS_URL is set: this test needs a Redis it may kill")
    with server:
        yield server
