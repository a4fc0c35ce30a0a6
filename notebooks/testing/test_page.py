"""The page in a real browser: the system Chromium, driven by Playwright."""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("WSLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chrome")


@pytest.mark.skipif(not CHROMIUM, reason="no Chromium found: set WSLAB_CHROMIUM")
def test_two_pages_chat(live_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    page_url = live_url.replace("ws://", "http://")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            ada, bob = browser.new_page(), browser.new_page()
            ada.goto(f"{page_url}/?user=ada")
            expect(ada.locator("#status")).to_have_text("connected")
            bob.goto(f"{page_url}/?user=bob")
            expect(ada.locator("#log")).to_contain_text("bob joined")
            bob.fill("#text", "hello ada")
            bob.keyboard.press("Enter")
            expect(ada.locator("#log")).to_contain_text("bob: hello ada")
        finally:
            browser.close()
