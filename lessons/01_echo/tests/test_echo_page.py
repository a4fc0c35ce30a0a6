"""Lesson 01's browser page in headless Chromium: type, send, see the echo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lessons import find
from lessons.kit import LiveServer

pytestmark = pytest.mark.browser


def test_page_echoes_what_the_user_types(
    serve: Callable[..., LiveServer], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    server = serve(find("01").app())
    page = new_page()
    page.goto(server.http_url + "/")
    expect(page.locator("#status")).to_have_text("connected")
    for text in ["hello from Chromium", "second message"]:
        page.fill("#text", text)
        page.keyboard.press("Enter")
        expect(page.locator("#log")).to_contain_text(f"← Echo: {text}")
    expect(page.locator("#text")).to_have_value("")


def test_page_reports_the_close_code_when_the_server_stops(
    new_page: Callable[[], Any],
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    with LiveServer(find("01").app()) as server:
        page.goto(server.http_url + "/")
        expect(page.locator("#status")).to_have_text("connected")
    expect(page.locator("#status")).to_have_text("closed (1012)")
