"""Lesson 05's experiments: the client side of what the notebook shows, read top to bottom.

- ``printed()``: capture what this process prints, an in-process server's ``print()``
  included, and wait for a line (the notebook runs a lesson's server in its own process,
  loaded with its settings by ``lessons.load_with``).
- ``client_process(script, url)``: a Python client in its own process, that a cell can
  freeze (SIGSTOP) as a laptop lid or a dead NAT would: its sockets stay open, it answers
  nothing. POSIX only (Linux, macOS): ``CAN_FREEZE`` says whether this system can.
- ``removed_after(printed, process, within)``: freeze it; how long until the server says so.
- ``released_after(port, process)``: freeze it, and measure how long the server on ``port``
  keeps a socket for it (read with ``ss``: Linux).
- ``flood_reaching(url)``: one client floods a room; how many of its messages reach another.
- ``big_token`` opens a WebSocket handshake whose request line (or one header) is 10 kB
  long, against the P35 apps, and says what the server did with it, in the words of
  ``lessons/course/versions.py``'s claim ``oversized-handshake``: the behaviour changed in
  uvicorn 0.55, so the notebook prints which one your install shows.
"""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import LiveServer
from lessons.kit.client import LiveClient
from lessons.kit.sockets import HAVE_SS, server_sockets
from lessons.kit.timing import eventually, scaled

CAN_FREEZE = hasattr(signal, "SIGSTOP")
OVERSIZED = CLAIMS["oversized-handshake"]
SILENT, ANSWERED = (era.behaviour for era in OVERSIZED.eras)


class Printed(io.StringIO):
    """What this process printed while ``printed()`` captured it, line by line."""

    @property
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()

    async def wait_for(self, text: str, timeout: float = 5.0, start: int = 0) -> None:
        """Until a line from number ``start`` on contains ``text``; TimeoutError after
        ``timeout`` seconds. (Printing notifies nobody: this polls.)"""
        await eventually(lambda: any(text in line for line in self.lines[start:]), timeout)


@contextmanager
def printed() -> Iterator[Printed]:
    """Capture this process's ``print()`` output, from every thread: an in-process server
    prints into it instead of into the notebook cell that happens to run."""
    with redirect_stdout(Printed()) as captured:
        yield captured


@contextmanager
def client_process(script: str | Path, url: str) -> Iterator[subprocess.Popen[str]]:
    """``python script url`` in its own process; thawed and killed on exit."""
    process = subprocess.Popen(
        [sys.executable, str(script), url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(5)


async def removed_after(
    printed: Printed, process: subprocess.Popen[str], within: float
) -> float | None:
    """Freeze ``process``; seconds until the server prints ``left: 0 clients`` (None: not
    within ``within`` seconds)."""
    mark = len(printed.lines)
    process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        await printed.wait_for("left: 0 clients", within, start=mark)
    except TimeoutError:
        return None
    return time.monotonic() - frozen


async def released_after(
    port: int, process: subprocess.Popen[str], limit: float = 15
) -> float | None:
    """Freeze ``process``; seconds until the server on ``port`` holds no socket any more, or
    None if it still holds one ``limit`` seconds later."""
    process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        await eventually(lambda: not [s for s in server_sockets(port) if s.owned], limit, 0.05)
    except TimeoutError:
        return None
    return time.monotonic() - frozen


async def flood_reaching(url: str, count: int = 1000) -> tuple[int, tuple[int | None, str]]:
    """A flooder sends ``count`` messages, then "end"; return how many flood messages reach a
    victim in the same room, and how the flooder's connection ended ((None, "") if open).

    The victim reads until "end", or, once the flooder is closed (then no "end" comes), until
    it has been quiet for 0.3 s."""
    async with (
        LiveClient(url, name="victim") as victim,
        LiveClient(url, name="flooder", max_queue=None) as flooder,  # it reads no reply: P38
    ):
        try:
            for n in range(count):
                await flooder.connection.send(f"flood {n}")
            await flooder.connection.send("end")
        except ConnectionClosed:
            pass  # a server with a rate limit closes it mid-flood
        floods = 0
        async with asyncio.timeout(scaled(10)):
            while True:
                try:
                    text = await victim.receive(timeout=0.3)
                except TimeoutError:
                    if flooder.close_code is not None:
                        break
                    continue  # the flooder is open: its "end" is still to come
                if text == "end":
                    break
                floods += str(text).startswith("flood")
        return floods, (flooder.close_code, flooder.close_reason or "")


async def big_token(stem: str, where: str = "query", wait: float = 1.0) -> str:
    """Send ``stem``'s app (``pitfall_oversized_handshake`` or ``fix_...``) a handshake with
    10,000 characters in its query string or in one header; return what the server did."""
    module = find("05").module(stem)
    big = "a" * 10_000  # over websockets' 8 KiB limit for a line, under h11's 16 KiB
    with LiveServer(module.app, ws=module.WS, log_level="critical") as live:

        def held() -> list[str]:  # this server's sockets that are still open
            return [str(s) for s in server_sockets(live.port) if s.owned] if HAVE_SS else []

        url = live.ws_url(f"/ws?token={big}" if where == "query" else "/ws")
        headers = {"X-Token": big} if where == "header" else None
        try:
            async with connect(url, additional_headers=headers, open_timeout=wait):
                return "accepted"
        except TimeoutError:  # no answer at all: does the server still hold the socket?
            return SILENT if held() or not HAVE_SS else f"no answer within {wait} s"
        except InvalidStatus as refused:
            status = refused.response.status_code
            await eventually(lambda: not held())  # the socket is freed, or this times out
            return ANSWERED if status == (414 if where == "query" else 431) else f"HTTP {status}"
