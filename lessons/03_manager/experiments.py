"""Lesson 03's experiments: the client side of each scene the notebook plays, top to bottom.

Each scene serves an app on a real uvicorn, connects real clients and prints what they
heard and what the server logged (its errors only):

- ``heard`` listens to clients for a moment and prints what each one received;
- ``ann_leaves`` (P10): bob stays, ann joins and leaves at once;
- ``bye_then_hi`` (P11, P15): bob says ``bye`` and is closed, then ann says ``hi``;
- ``two_tabs`` (P14): alice opens two tabs and closes the first;
- ``vanish`` (P12): clients die without a close frame;
- ``StalledRoom`` (P13, P36): one client stops reading while another floods the room.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from contextlib import ExitStack, suppress
from types import ModuleType, TracebackType
from typing import Any, Self

import httpx
from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient
from lessons.kit.observe import server_log
from lessons.kit.server import LiveServer
from lessons.kit.sockets import TcpSocket, server_sockets
from lessons.kit.timing import eventually, scaled

# What arrived, within a window: a fixed sequence of receive() calls breaks as soon as a
# learner sends one more message; heard() prints whatever each client got, so a cell a
# learner changes freely still runs.


async def _drain(client: LiveClient, within: float) -> list[Any]:
    received: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                data = await client.connection.recv()
        except (TimeoutError, ConnectionClosed):
            break
        try:
            received.append(json.loads(data))
        except (TypeError, ValueError):
            received.append(data)
    return received


async def heard(*clients: LiveClient, within: float = 0.1) -> dict[str, list[Any]]:
    """Listen to every client at once for ``within`` seconds (scaled by
    ``WSLAB_TIMEOUT_SCALE``); print and return what each received (JSON decoded where it is
    JSON), by client name."""
    results = await asyncio.gather(*(_drain(client, scaled(within)) for client in clients))
    found = {client.name: received for client, received in zip(clients, results, strict=True)}
    for name, received in found.items():
        print(f"{name} heard:", *(received or ["nothing"]), sep="\n    ")
    return found


# The scenes.


async def ann_leaves(app: Any) -> None:
    """Bob is connected; ann joins and leaves at once. What bob hears, what the server logs."""
    with server_log() as log, LiveServer(app) as live:
        async with LiveClient(live.ws_url("/ws?user=bob"), name="bob") as bob:
            async with LiveClient(live.ws_url("/ws?user=ann")):
                pass
            await heard(bob)
    log.print("ERROR")


async def bye_then_hi(app: Any, path: str = "/ws?user=") -> None:
    """Ann, bob and cat; bob says ``bye`` (the server closes him, and forgets to unregister
    him); then ann says ``hi``. Who hears it, how ann's connection ends, what is logged."""
    with server_log() as log, LiveServer(app) as live:
        url = live.ws_url(path)
        async with (
            LiveClient(url + "ann", name="ann") as ann,
            LiveClient(url + "bob", name="bob") as bob,
            LiveClient(url + "cat", name="cat") as cat,
        ):
            await bob.send("bye")
            await bob.wait_closed()
            await ann.send("hi")
            await heard(ann, cat)
            print("ann's connection:", "open" if ann.close_code is None else ann.close_code)
    log.print("ERROR")


async def two_tabs(app: Any) -> None:
    """Alice has two tabs; bob speaks; alice closes her first tab; bob speaks again."""
    with server_log() as log, LiveServer(app) as live:
        url = live.ws_url("/ws?user=")
        async with (
            LiveClient(url + "alice", name="tab1") as tab1,
            LiveClient(url + "alice", name="tab2") as tab2,
            LiveClient(url + "bob", name="bob") as bob,
        ):
            await bob.send("hi")
            await heard(tab1, tab2)
            await tab1.close()
            print("tab1 closed")
            await bob.send("still there?")
            await heard(tab2)
    log.print("ERROR")


async def vanish(module: ModuleType, clients: int = 20) -> None:
    """``clients`` clients connect, say hello and die without a close frame; then how many
    sockets the app still lists (its ``connections``, once its ``handlers`` are done)."""
    with server_log() as log, LiveServer(module.app) as live:
        for _ in range(clients):
            async with LiveClient(live.ws_url("/ws")) as client:
                await client.send("hi")
                await client.receive()
                client.connection.transport.abort()  # no close frame: the client just died
        await eventually(lambda: module.handlers == 0)  # nothing to await: polled
    print(f"{clients} clients came and went; the server still lists {len(module.connections)}")
    log.print("ERROR")


# One client stops reading (P13, P36). StalledRoom serves an app whose /ws broadcasts every
# text message to every client and connects three real clients: ``slow`` stops reading (its
# TCP connection stays open, like a phone in a tunnel), ``pen`` writes and ``healthy`` reads.

CLIENT = {"compression": None, "max_queue": None}  # real bytes; the library never pauses itself


def sockets(server_port: int, client_port: int) -> list[TcpSocket]:
    """The server's end of one client's connection, as ``ss`` lists it (see kit/sockets.py)."""
    return [held for held in server_sockets(server_port) if held.peer_port == client_port]


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
        got = 0
        for _ in range(messages):
            await self.pen.send(os.urandom(size // 2).hex())
            try:
                await self.healthy.receive(timeout=wait)
            except TimeoutError:
                print(f"healthy heard {got} of {messages}, then nothing for {wait} s")
                return got
            got += 1
            if got % 10 == 0 and await self.clients() < 3:
                print(f"healthy heard {got} messages; the server no longer counts slow")
                return got
        print(f"healthy heard all {got} messages ({got * size / 1e6:.1f} MB)")
        return got

    def server_side(self) -> list[TcpSocket]:
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
