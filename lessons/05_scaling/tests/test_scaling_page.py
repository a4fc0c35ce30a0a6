"""Lesson 05's page in headless Chromium: it reconnects with backoff when the server restarts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lessons import find
from lessons.kit import LiveServer
from lessons.kit.cluster import bind_peers

pytestmark = pytest.mark.browser
LESSON = find("05_scaling")


def test_page_reconnects_after_a_server_restart(
    new_page: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv("INSTANCE", "solo")
    server = LiveServer(LESSON.app())
    page = new_page()
    try:
        server.start()
        page.goto(server.http_url + "/")
        expect(page.locator("#status")).to_have_text("connected")
        page.fill("#text", "before the restart")
        page.keyboard.press("Enter")
        expect(page.locator("#log")).to_contain_text("solo: before the restart")
        server.stop()
        expect(page.locator("#log")).to_contain_text("closed (1012)")
        server.start()  # same port
        expect(page.locator("#reconnects")).not_to_have_text("0")
        expect(page.locator("#status")).to_have_text("connected")
        page.fill("#text", "after the restart")
        page.keyboard.press("Enter")
        expect(page.locator("#log")).to_contain_text("solo: after the restart")
    finally:
        server.stop()


def test_pages_on_two_processes_share_the_room_and_move_on_a_rolling_restart(
    new_page: Callable[[], Any], redis_url: str, serve_file
) -> None:
    from playwright.sync_api import expect

    servers = bind_peers(
        [
            serve_file(
                LESSON.app_path, start=False, env={"BROKER_URL": redis_url, "INSTANCE": name}
            )
            for name in ("one", "two")
        ]
    )
    for server in servers:
        server.start()
    pages = []
    for server in servers:
        page = new_page()
        page.goto(server.http_url + "/")
        expect(page.locator("#status")).to_have_text("connected")
        pages.append(page)
    expect(pages[1].locator("#instance")).to_have_text("two")
    pages[0].fill("#text", "hello from one")
    pages[0].keyboard.press("Enter")
    for page in pages:
        expect(page.locator("#log")).to_contain_text("one: hello from one")
    servers[0].stop()  # a rolling restart: the page on one is told 1012 and moves to two
    expect(pages[0].locator("#log")).to_contain_text("closed (1012)")
    expect(pages[0].locator("#instance")).to_have_text("two")
    expect(pages[0].locator("#status")).to_have_text("connected")
    pages[0].fill("#text", "still here")
    pages[0].keyboard.press("Enter")
    for page in pages:
        expect(page.locator("#log")).to_contain_text("two: still here")
