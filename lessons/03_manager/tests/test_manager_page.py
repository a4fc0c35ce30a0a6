"""Lesson 03's pages in headless Chromium: the chat, the canvas, the task board, the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lessons import find
from lessons.kit import LiveServer

pytestmark = pytest.mark.browser
LESSON = find("03_manager")


def chat_page(new_page: Callable[[], Any], server: LiveServer, room: str, user: str) -> Any:
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{server.http_url}/?room={room}&user={user}")
    expect(page.locator("#status")).to_have_text(f"connected to {room} as {user}")
    return page


def say(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.keyboard.press("Enter")


def test_two_pages_in_a_room_chat_and_another_room_hears_nothing(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(LESSON.app())
    ann = chat_page(new_page, server, "lobby", "ann")
    bob = chat_page(new_page, server, "lobby", "bob")
    cat = chat_page(new_page, server, "garden", "cat")
    expect(ann.locator("#members")).to_have_text("2")
    expect(cat.locator("#members")).to_have_text("1")
    say(ann, "hello bob")
    expect(bob.locator("#log .message")).to_have_text(["ann: hello bob"])
    say(bob, "hi ann")
    expect(ann.locator("#log .message")).to_have_text(["bob: hi ann"])
    say(cat, "anyone in the garden?")  # cat's own line shows: the page is live
    expect(cat.locator("#log .mine")).to_have_text(["me: anyone in the garden?"])
    say(ann, "@bob just for you")
    expect(bob.locator("#log .whisper")).to_have_text(["ann (to you): just for you"])
    # The server has fanned out ann's lines by now; cat's own round trip comes after them.
    say(cat, "@ann are you there?")
    expect(cat.locator("#log .error")).to_have_text(["error: nobody called 'ann'"])
    expect(cat.locator("#log .message")).to_have_count(0)
    expect(ann.locator("#log .message")).to_have_count(1)  # nobody echoes ann's own lines
    bob.close()
    expect(ann.locator("#members")).to_have_text("1")
    expect(ann.locator("#log .system").last).to_have_text("bob leaves")


def test_chat_page_shows_error_events(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    ann = chat_page(new_page, serve(LESSON.app()), "lobby", "ann")
    say(ann, "@nobody hello?")
    expect(ann.locator("#log .error")).to_have_text(["error: nobody called 'nobody'"])


def draw(page: Any, start: tuple[int, int], end: tuple[int, int]) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    for step in range(1, 6):
        x = start[0] + (end[0] - start[0]) * step / 5
        y = start[1] + (end[1] - start[1]) * step / 5
        page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.up()


def test_shared_canvas_with_two_pages_then_a_latecomer(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(LESSON.app("canvas"))
    pages = []
    for _ in range(2):
        page = new_page()
        page.goto(server.http_url + "/")
        expect(page.locator("#status")).to_have_text("connected")
        pages.append(page)
    first, second = pages
    draw(first, (20, 20), (200, 150))
    expect(first.locator("#strokes")).to_have_text("1")
    expect(second.locator("#strokes")).to_have_text("1")  # broadcast to the other page
    draw(second, (300, 50), (100, 300))
    expect(first.locator("#strokes")).to_have_text("2")
    latecomer = new_page()
    latecomer.goto(server.http_url + "/")
    expect(latecomer.locator("#status")).to_have_text("connected")
    expect(latecomer.locator("#strokes")).to_have_text("0")  # no history: exercise 2 adds it
    # A stroke drawn now reaches the latecomer, and really paints its canvas.
    draw(first, (50, 50), (250, 250))
    expect(latecomer.locator("#strokes")).to_have_text("1")
    painted = latecomer.evaluate(
        "() => document.getElementById('canvas').getContext('2d')"
        ".getImageData(0, 0, 600, 400).data.some((value) => value !== 0)"
    )
    assert painted
    second.click("#clear")
    for page in (first, second, latecomer):
        expect(page.locator("#strokes")).to_have_text("0")


def test_task_board_page_follows_rest_changes(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(LESSON.app("board"))
    page, other = new_page(), new_page()
    for p in (page, other):
        p.goto(server.http_url + "/")
        expect(p.locator("#status")).to_contain_text("connected")
    page.fill("#title", "write the lesson")
    page.keyboard.press("Enter")
    expect(other.locator("#task-1")).to_have_text("○ write the lesson")
    other.click("#task-1")
    expect(page.locator("#task-1")).to_have_text("✓ write the lesson")
    page.fill("#title", "write the lesson")
    page.keyboard.press("Enter")
    expect(page.locator("#error")).to_contain_text("already exists")
    expect(other.locator("#tasks li")).to_have_count(1)


def test_dashboard_page_shows_live_metrics(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    module = LESSON.module("dashboard")
    module.INTERVAL = 0.1
    server = serve(module.app)
    page = new_page()
    page.goto(server.http_url + "/")
    expect(page.locator("#metrics")).to_contain_text("tick")
    expect(page.locator("#metrics tr").first).to_have_text('type"metrics"')
