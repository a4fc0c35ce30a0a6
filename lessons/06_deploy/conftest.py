"""Fixtures of lesson 06: nginx (skipped when absent unless required), proxies, instances."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lessons import load_module
from lessons.kit.proxy import Caddy, Nginx, find_nginx
from lessons.kit.server import SubprocessServer

HERE = Path(__file__).parent
REQUIRE_NGINX = "WSLAB_REQUIRE_NGINX"


@pytest.fixture
def nginx() -> Iterator[Callable[..., Nginx]]:
    """``nginx(servers, "fix_no_upgrade", **options)``: nginx in front of ``servers`` with
    that file's ``location`` block, stopped after the test."""
    if find_nginx() is None:
        reason = "nginx not found: install Debian's `nginx` package"
        if os.environ.get(REQUIRE_NGINX):
            pytest.fail(f"{reason} ({REQUIRE_NGINX} is set)")
        pytest.skip(reason)
    started: list[Nginx] = []

    def start(servers: list[Any], stem: str = "fix_no_upgrade", **options: Any) -> Nginx:
        location = load_module(HERE / f"{stem}.py").LOCATION
        proxy = Nginx([server.port for server in servers], location, **options)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def caddy() -> Iterator[Callable[..., Caddy]]:
    """``caddy(servers)``: Caddy with TLS in front of ``servers``, stopped after the test."""
    started: list[Caddy] = []

    def start(servers: list[Any], **options: Any) -> Caddy:
        proxy = Caddy([server.port for server in servers], **options)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def app_file() -> Iterator[Callable[..., SubprocessServer]]:
    """``app_file("fix_idle_timeout", env=..., **uvicorn_options)``: a lesson file under
    uvicorn in its own process, stopped after the test."""
    started: list[SubprocessServer] = []

    def start(stem: str, **options: Any) -> SubprocessServer:
        options.setdefault("log_level", "warning")
        server = SubprocessServer(HERE / f"{stem}.py", **options)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()
