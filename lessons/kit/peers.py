"""Unlucky and hostile peers for lesson 05's demonstrations and tests, each a few lines.

- ``client_process(script, url)``: a Python client in its own process, that a cell can
  freeze (SIGSTOP) as a laptop lid or a dead NAT would: its sockets stay open, it answers
  nothing. POSIX only (Linux, macOS): ``CAN_FREEZE`` says whether this system can.
- ``released_after(port, process)``: freeze it, and measure how long the server on ``port``
  keeps a socket for it (read with ``ss``: Linux).
- ``removed_after(printed, process, within)``: freeze it; how long until the server says so.
- ``flood_reaching(url)``: one client floods a room; how many of its messages reach another.

And for running a lesson's server in this process rather than in a process of its own
(loaded with its settings by ``lessons.load_with``):

- ``printed()``: capture what this process prints, an in-process server's ``print()``
  included, and wait for a line.
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

from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient
from lessons.kit.sockets import server_sockets
from lessons.kit.timing import eventually, scaled

CAN_FREEZE = hasattr(signal, "SIGSTOP")


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


async def released_after(port: int, process: subprocess.Popen[str], limit: float = 15) -> float:
    """Freeze ``process``; seconds until the server on ``port`` holds no socket any more."""
    process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    await eventually(lambda: not [s for s in server_sockets(port) if s.owned], limit, 0.05)
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
