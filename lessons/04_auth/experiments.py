"""Lesson 04's experiments: one WebSocket handshake, seen as a client sees it, in one line.

A server that refuses a handshake before ``accept()`` answers with HTTP: a status and a
body, never a close frame. After ``accept()`` it can only close, with a code and a reason.
``knock`` tries one handshake and prints whichever the client got:

    refused: HTTP 401 {"detail":"missing token"}
    accepted; ← {"type":"welcome","user":"alice"}; closed after 1.0 s: 1008 'authentication timeout'

Given an app instead of a URL, it serves the app on a real uvicorn for the call. The
server's log is captured, not printed (``log="WebSocket /ws"`` prints the lines that
contain that text).

P22 needs a real browser: a page from another origin opens a WebSocket with the user's
cookie, which only a browser sends. ``Chromium`` is a headless system Chromium for notebook
cells, driven by Playwright's async API: a notebook's kernel already runs an event loop, and
Playwright's sync API refuses to start inside one. ``Chromium.launch()`` starts the system
Chromium (never a downloaded one) with one profile: one person's browser, whose cookies
every page shares, as in real life. It prints nothing, so a notebook can start it early as
a task and await it where the browser is needed; ``status`` is the line to print then.
Without Chromium (or Playwright), ``status`` says so and each ``visit`` prints one line
saying it was skipped, so "Run All" goes on; with ``WSLAB_REQUIRE_BROWSER`` set (CI), a
missing browser is an error.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lessons.kit.browser import CHROMIUM_ARGS, REQUIRE_BROWSER, chromium_path
from lessons.kit.client import Message
from lessons.kit.observe import ServerLog, server_log
from lessons.kit.server import LiveServer
from lessons.kit.timing import scaled


@dataclass
class Knock:
    """What one handshake gave the client."""

    status: int  # 101 when accepted
    body: str = ""  # the refusal's body
    received: list[Message] = field(default_factory=list)
    close_code: int | None = None  # None: still open when the client stopped waiting
    close_reason: str = ""
    log: ServerLog = field(default_factory=ServerLog)

    @property
    def accepted(self) -> bool:
        return self.status == 101

    def _ipython_display_(self) -> None:
        """A cell ending in ``await knock(...)`` shows the line knock printed, not this too."""


async def _knock(
    url: str, send: Message | None, wait: float, connect_options: dict[str, Any]
) -> tuple[Knock, str]:
    try:
        async with connect(url, open_timeout=scaled(5), **connect_options) as ws:
            seen, parts, started = Knock(101), ["accepted"], time.perf_counter()
            if send is not None:
                await ws.send(send)
            try:
                async with asyncio.timeout(scaled(wait)):
                    async for message in ws:  # ends when the server closes
                        seen.received.append(message)
                        parts.append(f"← {message}")
            except TimeoutError:
                return seen, "; ".join([*parts, f"still open after {wait:g} s"])
            except ConnectionClosed:
                pass
            seen.close_code, seen.close_reason = int(ws.close_code or 1006), ws.close_reason or ""
            after = time.perf_counter() - started
            parts.append(f"closed after {after:.1f} s: {seen.close_code} {seen.close_reason!r}")
            return seen, "; ".join(parts)
    except InvalidStatus as refused:
        body = bytes(refused.response.body or b"").decode(errors="replace")
        status = refused.response.status_code
        return Knock(status, body), f"refused: HTTP {status} {body or '(empty body)'}"


async def knock(
    target: str | Any,
    path: str = "/ws",
    *,
    send: Message | None = None,
    wait: float = 0.2,
    label: str = "",
    log: str | None = None,
    **connect_options: Any,
) -> Knock:
    """Open one handshake on ``target`` (a ``ws://`` URL, or an app served for the call at
    ``path``), send ``send`` if given, collect messages for up to ``wait`` seconds or until
    the server closes, and print what the client saw in one line. ``connect_options`` go to
    ``websockets.connect`` (``additional_headers``, ``origin``, ``subprotocols``)."""
    with server_log() as records:  # whichever server answers, its log is not printed
        if isinstance(target, str):
            seen, line = await _knock(target, send, wait, connect_options)
        else:
            with LiveServer(target, log_level="info") as live:
                seen, line = await _knock(live.ws_url(path), send, wait, connect_options)
    print(f"{label}: {line}" if label else line)
    seen.log = records
    for text in records.lines if log else []:
        if log in text:
            print("  server log:", text)
    return seen


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
