"""Lesson 02's browser page in headless Chromium: connect, messages, push, close codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lessons import find
from lessons.kit import LiveServer

pytestmark = pytest.mark.browser
LESSON = find("02_lifecycle")


def open_connected(server: LiveServer, new_page: Callable[[], Any], client_id: str) -> Any:
    from playwright.sync_api import expect

    page = new_page()
    page.goto(server.http_url + "/")
    page.fill("#client", client_id)
    page.click("#join button")
    expect(page.locator("#status")).to_have_text("open")
    return page


def test_page_shows_messages_push_and_the_server_close(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(LESSON.app())
    page = open_connected(server, new_page, "chromium")
    log = page.locator("#log")
    expect(log).to_contain_text('"type":"welcome"')
    page.fill("#text", "hello from Chromium")
    page.keyboard.press("Enter")
    expect(log).to_contain_text('← {"type":"echo","text":"hello from Chromium"}')
    pushed = httpx.post(server.http_url + "/notify/chromium", json={"text": "pushed"}, timeout=5)
    assert pushed.status_code == 200
    expect(log).to_contain_text('← {"type":"notification","text":"pushed"}')
    page.fill("#text", "/close 4001 kicked by the server")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("closed (4001 kicked by the server)")
    kinds = [e["event"] for e in server.app.state.events]
    assert kinds == ["connected", "message", "notified", "message", "closed by server"]


def wait_for_server_event(page: Any, client_id: str, event: str) -> dict:
    """Poll the server's timeline (``GET /events``) from the page until ``event`` appears."""
    found = page.wait_for_function(
        """async ([client, kind]) => {
            const events = await (await fetch(`/events?client=${client}`)).json();
            return events.find((e) => e.event === kind);
        }""",
        arg=[client_id, event],
    )
    return found.json_value()


def test_page_close_button_sends_1000_and_the_server_records_it(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(LESSON.app())
    page = open_connected(server, new_page, "leaver")
    page.click("#leave")
    expect(page.locator("#status")).to_have_text("closed (1000 bye from the page)")
    event = wait_for_server_event(page, "leaver", "disconnected")
    assert (event["code"], event["reason"]) == (1000, "bye from the page")


def test_leaving_the_page_sends_1001_going_away(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    server = serve(LESSON.app())
    page = open_connected(server, new_page, "tab")
    watcher = new_page()
    watcher.goto(server.http_url + "/")
    page.goto("about:blank")  # navigating away unloads the page and its sockets
    event = wait_for_server_event(watcher, "tab", "disconnected")
    assert event["code"] == 1001


def test_a_rejected_handshake_is_only_1006_to_the_browser(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    """The server answers HTTP 422 with details; JavaScript sees none of it."""
    from playwright.sync_api import expect

    server = serve(LESSON.app())
    page = new_page()
    page.goto(server.http_url + "/")
    page.fill("#name", "")
    page.click("#join button")
    expect(page.locator("#status")).to_have_text("closed (1006)")


def test_page_sees_1012_when_the_server_stops(new_page: Callable[[], Any]) -> None:
    from playwright.sync_api import expect

    with LiveServer(LESSON.app()) as server:
        page = open_connected(server, new_page, "restart")
    expect(page.locator("#status")).to_have_text("closed (1012)")
