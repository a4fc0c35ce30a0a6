"""A headless system Chromium for notebook cells, driven by Playwright's async API.

A notebook's kernel already runs an event loop, and Playwright's sync API refuses to start
inside one; the async API works with top-level ``await``. ``Chromium.launch()`` starts the
system Chromium (never a downloaded one) with one profile: one person's browser, whose
cookies every page shares, as in real life.

``launch()`` prints nothing, so a notebook can start it early as a task and await it where
the browser is needed; ``status`` is the line to print then. Without Chromium (or
Playwright), ``status`` says so and each ``visit`` prints one line saying it was skipped, so
"Run All" goes on; with ``WSLAB_REQUIRE_BROWSER`` set (CI), a missing browser is an error.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

from lessons.kit.browser import CHROMIUM_ARGS, chromium_path
from lessons.kit.timing import scaled

REQUIRE_BROWSER = "WSLAB_REQUIRE_BROWSER"


class Chromium:
    """One headless Chromium with one profile (a cookie jar shared by all its pages)."""

    def __init__(
        self, status: str, playwright: Any = None, browser: Any = None, context: Any = None
    ) -> None:
        self.status = status  # one line: which Chromium runs, or why there is none
        self.playwright, self.browser, self.context = playwright, browser, context

    def __bool__(self) -> bool:
        return self.context is not None

    @classmethod
    async def launch(cls) -> Chromium:
        """Start the system Chromium; without it, say why in ``status`` (or raise, in CI)."""
        executable = chromium_path()
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            return cls._missing("the playwright package is not installed")
        if executable is None:
            return cls._missing("Chromium not found (install chromium or set WSLAB_CHROMIUM)")
        playwright = await async_playwright().start()
        try:
            browser = await playwright.chromium.launch(
                executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
            )
            context = await browser.new_context()
        except BaseException:
            await playwright.stop()
            raise
        context.set_default_timeout(scaled(10) * 1000)
        return cls(f"Chromium {browser.version} is running headless", playwright, browser, context)

    @classmethod
    def _missing(cls, reason: str) -> Chromium:
        if os.environ.get(REQUIRE_BROWSER):
            raise RuntimeError(f"{reason}, and {REQUIRE_BROWSER} is set")
        return cls(f"{reason}: the browser steps of this notebook are skipped")

    async def post(self, url: str) -> None:
        """POST to ``url`` with this browser's cookies (a form submitted earlier, say)."""
        if self:
            response = await self.context.request.post(url)
            assert response.ok, f"POST {url}: HTTP {response.status}"

    async def cookie_names(self, url: str) -> list[str]:
        """The names of the cookies this browser holds for ``url``'s host."""
        return [c["name"] for c in await self.context.cookies(url)] if self else []

    async def visit(self, *urls: str, expression: str = "outcome", cookies: bool = False) -> None:
        """Open each URL in a new page, all at once, wait for ``expression`` (a promise the
        page sets), and print one line per page, in order: where it came from and what it
        reported."""
        if not self:
            print("skipped: no browser")
            return
        for line in await asyncio.gather(*(self._visit(url, expression, cookies) for url in urls)):
            print(line)

    async def _visit(self, url: str, expression: str, cookies: bool) -> str:
        page = await self.context.new_page()
        try:
            await page.goto(url)
            outcome = await page.evaluate(expression)
        finally:
            await page.close()
        held = f" (cookies it holds for this host: {await self.cookie_names(url)})"
        return f"a page on {urlsplit(url).netloc}{held if cookies else ''}: {outcome}"

    async def close(self) -> None:
        if self:
            await self.browser.close()
            await self.playwright.stop()
            self.context = None
