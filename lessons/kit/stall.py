"""A client that stops reading, and what the server and the other clients see.

``StalledRoom`` serves an app whose ``/ws`` broadcasts every text message to every client
(the slow-consumer apps of lesson 03) and connects three real clients: ``slow`` stops
reading (its TCP connection stays open, like a phone in a tunnel), ``pen`` writes and
``healthy`` reads. ``flood`` sends until the healthy client stops hearing, or until the
server lets go of the slow one; ``server_side`` asks ``ss`` what the server still holds for
the slow client; ``read_again`` lets the slow client read and says how its connection ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient
from lessons.kit.observe import server_log
from lessons.kit.server import LiveServer
from lessons.kit.timing import eventually, scaled

CLIENT = {"compression": None, "max_queue": None}  # real bytes; the library never pauses itself


@dataclass(frozen=True)
class Held:
    """One TCP socket as ``ss`` lists it: its state, the bytes not yet sent, its owner."""

    state: str
    unsent: int
    owned: bool  # False: no process holds it any more (the kernel finishes it alone)

    def __str__(self) -> str:
        owner = "held by the server process" if self.owned else "no process holds it"
        return f"{self.state}, {self.unsent / 1e6:.1f} MB unsent, {owner}"


def sockets(local_port: int, remote_port: int) -> list[Held]:
    """The TCP sockets from ``local_port`` to ``remote_port`` on this host, read with ``ss``."""
    if shutil.which("ss") is None:
        raise RuntimeError("`ss` is not installed (Linux: the iproute2 package)")
    query = f"( sport = :{local_port} and dport = :{remote_port} )"
    out = subprocess.run(
        ["ss", "-tnpH", "state", "all", query], capture_output=True, text=True, check=True
    ).stdout
    return [
        Held(fields[0], int(fields[2]), "users:" in line)
        for line in out.splitlines()
        if len(fields := line.split()) >= 5
    ]


class StalledRoom:
    """A live server of ``app`` and three clients; ``slow`` stops reading on entry."""

    def __init__(self, app: Any, **server_options: Any) -> None:
        self.server = LiveServer(app, **server_options)
        self.quiet = ExitStack()  # the server's log is captured: ``self.log``
        self.slow = LiveClient("", name="slow", **CLIENT)
        self.pen = LiveClient("", name="pen", **CLIENT)
        self.healthy = LiveClient("", name="healthy", **CLIENT)
        self.http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self.log = self.quiet.enter_context(server_log())
        self.server.start()
        try:
            self.slow.connect_options["sock"] = small = socket.socket()
            small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # stall sooner
            small.connect((self.server.host, self.server.port))
            for client in (self.slow, self.pen, self.healthy):
                client.url = self.server.ws_url("/ws")
                await client.connect()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.slow.connection.transport.pause_reading()
        self.http = httpx.AsyncClient(base_url=self.server.http_url, verify=False)  # plain http
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in (self.slow, self.pen, self.healthy):
            if client.ws is not None:
                client.ws.transport.abort()
        if self.http is not None:
            await self.http.aclose()
        await asyncio.to_thread(self.server.stop)
        self.quiet.close()

    @property
    def slow_port(self) -> int:
        return int(self.slow.connection.transport.get_extra_info("sockname")[1])

    async def clients(self) -> int:
        """How many clients the server counts (its ``/stats``)."""
        assert self.http is not None, "use `async with StalledRoom(app) as room:`"
        return int((await self.http.get("/stats")).json()["clients"])

    async def flood(self, messages: int = 100, size: int = 65_536, wait: float = 0.3) -> int:
        """``pen`` sends up to ``messages`` of ``size`` bytes; ``healthy`` waits up to
        ``wait`` s for each. Stops when healthy hears nothing, or when the server has let
        go of ``slow``. Prints and returns how many messages healthy heard."""
        heard = 0
        for _ in range(messages):
            await self.pen.send(os.urandom(size // 2).hex())
            try:
                await self.healthy.receive(timeout=wait)
            except TimeoutError:
                print(f"healthy heard {heard} of {messages}, then nothing for {wait} s")
                return heard
            heard += 1
            if heard % 10 == 0 and await self.clients() < 3:
                print(f"healthy heard {heard} messages; the server no longer counts slow")
                return heard
        print(f"healthy heard all {heard} messages ({heard * size / 1e6:.1f} MB)")
        return heard

    def server_side(self) -> list[Held]:
        """What the server still holds for ``slow``, as ``ss`` sees it; printed."""
        held = sockets(self.server.port, self.slow_port)
        print("the server's end of slow's connection:", *(held or ["gone"]))
        return held

    async def drop(self, within: float) -> None:
        """Flood until the server lets go of ``slow``, give its process up to ``within`` s
        to release the socket, then show what ``ss`` lists for it and what ``slow`` sees
        when it reads again."""
        await self.flood(messages=200)
        with suppress(TimeoutError):  # still held: server_side() shows it
            await eventually(self.released, timeout=within, interval=0.05)
        self.server_side()
        await self.read_again()

    def released(self) -> bool:
        """No socket of the server's process is left for ``slow``."""
        return not any(held.owned for held in sockets(self.server.port, self.slow_port))

    async def read_again(self, timeout: float = 5.0) -> tuple[int, int | None]:
        """``slow`` reads again until its connection ends (or ``timeout`` s pass); prints
        and returns how many messages it got and the close code (1006: no close frame)."""
        self.slow.connection.transport.resume_reading()
        got = 0
        try:
            async with asyncio.timeout(scaled(timeout)):
                while True:
                    await self.slow.connection.recv()
                    got += 1
        except ConnectionClosed:
            pass
        except TimeoutError:
            print(f"slow read {got} messages; its connection is still open after {timeout} s")
            return got, None
        code, reason = self.slow.close_code, self.slow.close_reason
        print(f"slow read {got} messages, then the connection closed: {code} {reason!r}")
        return got, code
