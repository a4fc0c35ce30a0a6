"""Unlucky and hostile peers for lesson 05's demonstrations and tests, each a few lines.

- ``client_process(script, url)``: a Python client in its own process, that a cell can
  freeze (SIGSTOP) as a laptop lid or a dead NAT would: its sockets stay open, it answers
  nothing. POSIX only (Linux, macOS): ``CAN_FREEZE`` says whether this system can.
- ``released_after(port, process)``: freeze it, and measure how long the server on ``port``
  keeps a socket for it (read with ``ss``: Linux).
- ``removed_after(server, process, within)``: freeze it; how long until the server says so.
- ``flood_reaching(url)``: one client floods a room; how many of its messages reach another.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient
from lessons.kit.server import SubprocessServer
from lessons.kit.sockets import server_sockets
from lessons.kit.timing import eventually

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

    Messages from two clients interleave, so the victim's own "mine" proves nothing: it reads
    until "end", or, once the flooder is closed (no "end" will come), until it is quiet."""
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
        await victim.send("mine")
        floods, closed = 0, False
        while True:
            try:  # once the flooder is closed, a quiet victim has had everything
                text = await victim.receive(timeout=0.5 if closed else 10)
            except TimeoutError:
                if closed:
                    break
                raise
            if text == "end":
                break
            if text == "mine":  # the pitfall relays on after it; the fix has closed the flooder
                try:
                    await flooder.wait_closed(timeout=1)
                    closed = True
                except TimeoutError:
                    pass
            floods += str(text).startswith("flood")
        return floods, (flooder.close_code, flooder.close_reason or "")


def removed_after(
    server: SubprocessServer, process: subprocess.Popen[str], within: float
) -> float | None:
    """Freeze ``process``; seconds until ``server`` logs ``left: 0 clients`` (None: not within)."""
    mark = len(server.lines)
    process.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        server.wait_for_output("left: 0 clients", timeout=within, start=mark)
    except TimeoutError:
        return None
    return time.monotonic() - frozen
