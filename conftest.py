"""Fixtures for every test in wslab: lessons' own tests and the cross-cutting ones."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lessons.kit import LiveServer, SubprocessServer, scaled
from lessons.kit.browser import CHROMIUM_ARGS, REQUIRE_BROWSER, chromium_path
from lessons.kit.forkserver import ENABLE as ENABLE_FORK_SERVER
from lessons.kit.leaks import settle, snapshot
from lessons.kit.redis_server import RedisServer

# Server processes are forked from multiprocessing's forkserver (lessons.kit.forkserver): the
# suite starts over a hundred, and each spends most of a second of CPU importing the same
# libraries. Inherited by the commands the tests start (a notebook's kernel spawns its
# servers all the same: lessons.kit.forkserver says why); tests of stop signals remove it,
# to stop what learners run.
os.environ.setdefault(ENABLE_FORK_SERVER, "1")


def unit_of(nodeid: str) -> str:
    """The unit of work an xdist worker takes (``--dist loadscope``, pyproject.toml): a
    test file, or a class (each notebook's run is one: tests/test_notebooks.py)."""
    return nodeid.rsplit("::", 1)[0]  # as xdist's LoadScopeScheduling splits it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The units in the order the workers take them (``--no-loadscope-reorder``), the
    longest first as far as markers tell: those that execute notebooks; then by their
    number of slow and browser tests; then by their number of tests. Each unit's tests keep
    their order."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_of(item.nodeid), []).append(item)

    def length(unit: list[pytest.Item]) -> tuple[bool, int, int]:
        heavy = sum(any(item.get_closest_marker(m) for m in ("slow", "browser")) for item in unit)
        return not any("executed" in item.fixturenames for item in unit), -heavy, -len(unit)

    items[:] = [item for unit in sorted(units.values(), key=length) for item in unit]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread, a child process or a listening socket behind."""
    before = snapshot()
    yield
    leaks = settle(before)
    if leaks:
        pytest.fail("left behind: " + "; ".join(leaks), pytrace=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """``serve(app, **options)`` starts a LiveServer that is stopped after the test."""
    started: list[LiveServer] = []

    def start(app: Any, **options: Any) -> LiveServer:
        server = LiveServer(app, **options).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def serve_file() -> Iterator[Callable[..., SubprocessServer]]:
    """``serve_file(path_or_target, env=..., **options)`` starts a SubprocessServer (an app
    file under uvicorn in its own process) that is stopped after the test; with
    ``start=False`` it is returned unstarted (servers that must know each other's ports
    bind them first: ``lessons.kit.cluster.bind_peers``)."""
    started: list[SubprocessServer] = []

    def make(target: Any, *, start: bool = True, **options: Any) -> SubprocessServer:
        server = SubprocessServer(target, **options)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The one HTTP client of the tests: ``http.get(url)``, with the kit's timeout.

    From an async test, call it in a thread (``await asyncio.to_thread(http.get, url)``)
    so that the server in the same event loop can answer."""
    with httpx.Client(timeout=scaled(5)) as client:
        yield client


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis: ``REDIS_URL`` if set, else a ``redis-server`` started for this test."""
    with RedisServer() as server:
        yield server


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_BROWSER):
        pytest.fail(f"{reason} (browser tests are required because {REQUIRE_BROWSER} is set)")
    pytest.skip(reason)


_open_browsers: set[Path] = set()  # the test files whose browser is open


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Headless system Chromium driven by Playwright (never a downloaded browser).

    One per test file (starting Playwright and Chromium takes about 1.5 s); each test gets
    fresh contexts from ``new_page``. While Playwright's sync API is open it keeps an event
    loop running on the main thread, which breaks any async test or ``asyncio.run`` run
    meanwhile: the browser tests come last in their file (``_browser_tests_last`` says so).

    Why not pytest-playwright's fixtures: their Playwright is session-scoped, so its loop
    stays on the main thread for the rest of the session. Seen with pytest-playwright
    0.10.0: after one test that used its ``page``, a plain ``asyncio.run`` in the next test
    raised RuntimeError; hundreds of async tests share each worker with the browser tests.
    """
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium not found: install Debian's `chromium` or set WSLAB_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile directory.
        chromium = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        _open_browsers.add(request.path)
        try:
            yield chromium
        finally:
            _open_browsers.discard(request.path)
            chromium.close()


@pytest.fixture(autouse=True)
def _browser_tests_last(request: pytest.FixtureRequest) -> None:
    if request.path in _open_browsers and "browser" not in request.fixturenames:
        pytest.fail(
            "a test after the browser tests of its file: move it above them (the browser's "
            "sync Playwright holds an event loop on this thread until the file ends)",
            pytrace=False,
        )


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(**options)`` opens a page in its own browser context (Playwright's context
    options: ``ignore_https_errors=True``, say), closed after the test."""
    contexts: list[Any] = []

    def open_page(**options: Any) -> Any:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
