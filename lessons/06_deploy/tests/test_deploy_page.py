"""Lesson 06's page in headless Chromium over https through Caddy: wss from the page's own
origin, shared rooms across instances, a reconnect that resumes after a restart, and the
mixed-content block a hard-coded ws:// URL runs into."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lessons import find
from lessons.kit.browser import CHROMIUM_ARGS, chromium_path
from lessons.kit.cluster import cluster
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer

LESSON = find("06_deploy")
pytestmark = pytest.mark.browser


def https_page(new_page: Callable[..., Any]) -> Any:
    """A page that accepts the proxy's test certificate (Playwright's test-only switch for
    Chromium; real users trust the CA file instead)."""
    return new_page(ignore_https_errors=True)


@pytest.fixture
def deployed(redis_server: RedisServer, caddy: Callable[..., Any]) -> Iterator[tuple[Any, list]]:
    servers = cluster(LESSON.file("app"), redis_server.url, instances=2, log_level="warning")
    try:
        for server in servers:
            server.start()
        yield caddy(servers), servers
    finally:
        for server in servers:
            server.stop()


def test_pages_over_https_share_a_room_across_instances_with_wss(
    new_page: Callable[..., Any], deployed: tuple[Any, list[SubprocessServer]]
) -> None:
    from playwright.sync_api import expect

    proxy, _ = deployed
    on: dict[str, Any] = {}  # instance -> a page connected to it
    sockets: list[str] = []
    for _ in range(6):
        # round robin counts requests, not users: a page makes two (the page and its
        # socket), so one more request in between moves the next socket along
        httpx.get(proxy.url, verify=ssl.create_default_context(cafile=proxy.ca_file))
        page = https_page(new_page)
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(proxy.url + "/?room=lobby")
        expect(page.locator("#status")).to_contain_text("connected to instance")
        on.setdefault(page.locator("#status").text_content().split()[3], page)
        if len(on) == 2:
            break
    assert len(on) == 2, "the proxy spreads pages over both instances"
    assert all(url.startswith("wss://localhost:") for url in sockets), sockets
    pages = list(on.values())
    pages[0].fill("#text", "over TLS")
    pages[0].keyboard.press("Enter")
    expect(pages[1].locator("#log")).to_contain_text("over TLS")


def test_the_page_resumes_after_its_instance_restarts(
    new_page: Callable[..., Any], deployed: tuple[Any, list[SubprocessServer]]
) -> None:
    from playwright.sync_api import expect

    proxy, servers = deployed
    watcher, talker = https_page(new_page), https_page(new_page)
    watcher.goto(proxy.url + "/?room=restart")
    expect(watcher.locator("#status")).to_contain_text("connected to instance")
    watched = watcher.locator("#status").text_content()
    server = next(s for s in servers if f"instance {s.port} " in watched)
    sockets: list[Any] = []
    watcher.on("websocket", lambda socket: sockets.append(socket))
    server.stop()  # the watcher's socket is closed (1012) and it reconnects
    talker.goto(proxy.url + "/?room=restart")  # the only instance up: the other one
    expect(talker.locator("#status")).to_contain_text("connected to instance")
    talker.fill("#text", "while you were away")
    talker.keyboard.press("Enter")
    server.start()
    expect(watcher.locator("#log")).to_contain_text("while you were away")
    assert sockets, "the watcher opened a new socket"
    assert "?last=" in sockets[-1].url, "and resumed from the last id it saw"


def test_an_https_page_cannot_open_a_plain_ws_url(
    redis_server: RedisServer, caddy: Callable[..., Any], browser: Any, serve_file
) -> None:
    """Chromium treats loopback names as secure, so the page is served as chat.test (mapped
    to 127.0.0.1 by a Chromium of its own): a name like a real deployment's."""
    server = serve_file(LESSON.file("app"), env={"BROKER_URL": redis_server.url})
    proxy = caddy([server], names=["chat.test"])
    rules = "--host-resolver-rules=MAP chat.test 127.0.0.1"
    chromium = browser.browser_type.launch(
        executable_path=str(chromium_path()),  # found: the browser fixture runs
        headless=True,
        args=[*CHROMIUM_ARGS, rules],
    )
    try:
        page = chromium.new_context(ignore_https_errors=True).new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"https://chat.test:{proxy.port}/?room=lobby")
        plain = f"ws://chat.test:{server.port}/ws/lobby"
        outcome = page.evaluate(OPEN, plain)
        secure = page.evaluate(OPEN, f"wss://chat.test:{proxy.port}/ws/lobby")
    finally:
        chromium.close()
    assert outcome != "opened", "an https page opened a plain ws:// connection"
    assert any("Mixed Content" in line for line in console), console
    assert secure == "opened"


OPEN = """(url) => new Promise((resolve) => {
    try {
        const socket = new WebSocket(url);
        socket.onopen = () => { resolve("opened"); socket.close(); };
        socket.onclose = (event) => resolve(`closed ${event.code}`);
    } catch (error) { resolve(error.name); }
})"""
