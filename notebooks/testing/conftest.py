"""Fixtures for testing a WebSocket app for real: a fresh app, a live uvicorn, a leak check.

``CHAT_APP`` names the app file to test (``app`` by default), so one test file can be run
against a broken and a fixed app.
"""

import asyncio
import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

HERE = Path(__file__).parent
TIMEOUT = 5.0  # seconds: every wait in these tests is bounded


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app() -> Any:
    """A fresh copy of the app for each test: no state leaks from one test to the next."""
    name = os.environ.get("CHAT_APP", "app")
    spec = importlib.util.spec_from_file_location(f"{name}_{id(object())}", HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture
def live_url(app: Any) -> Iterator[str]:
    """``ws://127.0.0.1:PORT``: the app under a real uvicorn, on a port the test bound itself."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # port 0: the system picks a free port, and it is ours
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:  # uvicorn sets it once it accepts connections
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.005)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()


def _open_sockets() -> int:
    fds = Path("/proc/self/fd")
    if not fds.exists():  # not Linux: count nothing rather than guess
        return 0
    return sum(1 for fd in fds.iterdir() if "socket" in os.path.realpath(fd))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """After each test: no thread, no socket left open by it."""
    threads, sockets = set(threading.enumerate()), _open_sockets()
    yield
    left = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not left, f"threads left running: {left}"
    assert _open_sockets() <= sockets, "sockets left open"
