"""Fixtures of lesson 06: nginx (skipped when absent unless required) and Caddy.

Each is a factory, ``fixture(...)`` starting one more, and everything it started is stopped
after the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lessons import find
from lessons.kit.proxy import Caddy, Nginx, find_nginx

LESSON = find("06_deploy")
REQUIRE_NGINX = "WSLAB_REQUIRE_NGINX"


def _factory(make: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []

    def start(*args: Any, **options: Any) -> Any:
        thing = make(*args, **options)
        started.append(thing)
        return thing.start()

    yield start
    for thing in reversed(started):
        thing.stop()


def _ports(servers: list[Any]) -> list[int]:
    return [server.port for server in servers]


@pytest.fixture
def nginx() -> Iterator[Callable[..., Nginx]]:
    """``nginx(servers, "fix_no_upgrade", read_timeout=...)``: nginx in front of
    ``servers`` with that lesson file's ``location`` block."""
    if find_nginx() is None:
        reason = "nginx not found: install Debian's `nginx` package"
        if os.environ.get(REQUIRE_NGINX):
            pytest.fail(f"{reason} ({REQUIRE_NGINX} is set)")
        pytest.skip(reason)

    def make(servers: list[Any], stem: str = "fix_no_upgrade", **options: Any) -> Nginx:
        return Nginx(_ports(servers), LESSON.module(stem).LOCATION, **options)

    yield from _factory(make)


@pytest.fixture
def caddy() -> Iterator[Callable[..., Caddy]]:
    """``caddy(servers, names=...)``: Caddy with TLS from its local CA in front of ``servers``."""
    yield from _factory(lambda servers, **options: Caddy(_ports(servers), **options))
