"""Lesson 06's experiments: what a client sees through a proxy, read top to bottom.

- ``start_instances(path, count)``: instances of an app in this process, each its own copy.
- ``whoami`` and ``forwarded(server)``: the client address an app believes it sees, through
  a proxy and straight from a client that claims another address (P42).
- ``handshake(url)``: open a WebSocket and say what came back (the first message, or the
  HTTP status that refused the upgrade).
- ``deployment(path, broker_url)``: instances of an app as real processes behind Caddy.
- ``ChatClient`` and ``rolling_deploy``: clients that reconnect with jitter and resume from
  their last stream id, while every instance is restarted in turn; messages counted.
- ``through_nginx(observe, servers, location)``: the same observation through nginx (P40).
- ``quiet(url, seconds)``: open a WebSocket, say nothing, and report whether and when it
  was cut (P41).
- ``meet(url)``: A and B join one room through a proxy; does B hear A (P44)?
- ``supervise(path, signal)``: run a supervisor script, stop it with a signal, and count
  the servers it left running, then stop them (P39).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lessons import load_with
from lessons.kit.cleanup import end_process
from lessons.kit.cluster import cluster
from lessons.kit.leaks import alive
from lessons.kit.proxy import Caddy, Nginx, find_nginx, tls
from lessons.kit.server import LiveServer, SubprocessServer, start_together
from lessons.kit.timing import scaled


def start_instances(
    path: str | Path,
    count: int,
    broker_url: str | None = None,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> list[LiveServer]:
    """``count`` instances of the app at ``path`` in this process, named A, B, ..., each a
    fresh copy of its module (its own state) on its own port. ``settings`` replace the
    module's settings (``HEARTBEAT``...); ``options`` go to uvicorn."""
    servers = []
    for letter in "ABCDEFGH"[:count]:
        module = load_with(path, **({"BROKER_URL": broker_url} if broker_url else {}))
        module.INSTANCE = letter
        for name, value in (settings or {}).items():
            setattr(module, name, value)
        servers.append(LiveServer(module.app, **options).start())
    return servers


async def whoami(
    url: str,
    source: str | None = None,
    headers: dict[str, str] | None = None,
    ca_file: str | Path | None = None,
) -> str:
    """The address the app says the client has, connecting from ``source`` (a loopback
    address such as 127.0.0.2) with ``headers`` added to the handshake."""
    options: dict[str, Any] = {"ssl": tls(ca_file), "additional_headers": headers or {}}
    if source:
        options["local_addr"] = (source, 0)
    async with websockets.connect(url, **options) as websocket:
        return str(json.loads(await websocket.recv())["you are"])


async def forwarded(server: Any) -> None:
    """Who the app at ``server`` believes its clients are: one through a Caddy in front of
    it (from 127.0.0.3), one straight to it (from 127.0.0.2) claiming 203.0.113.7."""
    with Caddy([server.port]) as proxy:
        real = await whoami(proxy.ws_url("/ws"), "127.0.0.3", ca_file=proxy.ca_file)
    print(f"client at 127.0.0.3, through the proxy: the app sees {real}")
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    claimed = await whoami(server.ws_url("/ws"), "127.0.0.2", spoof)
    print(f"client at 127.0.0.2, straight to the app, claiming 203.0.113.7: the app sees {claimed}")


async def handshake(url: str, ca_file: str | Path | None = None) -> str:
    """Open a WebSocket at ``url``; print and return what the client saw first."""
    try:
        async with websockets.connect(url, ssl=tls(ca_file), open_timeout=scaled(5)) as ws:
            seen = f"open, first message: {await asyncio.wait_for(ws.recv(), scaled(5))}"
    except InvalidStatus as exc:
        seen = f"refused: HTTP {exc.response.status_code} (the upgrade never reached the app)"
    print(seen)
    return seen


@contextlib.contextmanager
def deployment(
    path: str | Path, broker_url: str, count: int = 2
) -> Iterator[tuple[list[SubprocessServer], Caddy]]:
    """``count`` processes of the app at ``path`` sharing ``broker_url``, started side by
    side, and Caddy in front of them; all stopped at the end of the with-block.

    A restart is a new process, as in production: nothing of the old one (its Redis
    connections, its event loop) is reused.
    """
    servers = cluster(path, broker_url, instances=count, graceful_timeout=1, log_level="warning")
    try:
        start_together(servers)
        with Caddy([server.port for server in servers]) as proxy:
            yield servers, proxy
    finally:
        for server in servers:
            server.stop()


@dataclass
class ChatClient:
    """A client of lesson 06's app that behaves like its page: it reconnects with jitter
    when its connection drops, resumes after the last stream id it saw, and sends again
    what was not acknowledged. ``received`` holds each message's ``cid`` in order."""

    url: str
    ca_file: str | Path | None = None
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[str] = field(default_factory=list)
    reconnects: int = 0
    instances: set[str] = field(default_factory=set)
    last: str | None = None
    pending: dict[str, str] = field(default_factory=dict)
    _socket: Any = None
    _task: asyncio.Task[None] | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> ChatClient:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), scaled(10))
        return self

    async def _run(self) -> None:
        attempt = 0
        while True:
            url = self.url + (f"?last={self.last}" if self.last else "")
            try:
                async with websockets.connect(url, ssl=tls(self.ca_file)) as websocket:
                    self._socket, attempt = websocket, 0
                    for cid, text in list(self.pending.items()):
                        await websocket.send(json.dumps({"cid": cid, "text": text}))
                    async for raw in websocket:
                        self._receive(json.loads(raw))
            except (OSError, ConnectionClosed, InvalidStatus, TimeoutError):
                pass
            self._socket = None
            self._connected.clear()
            self.reconnects += 1
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))  # jitter

    def _receive(self, message: dict[str, Any]) -> None:
        self.progress.set()
        if message["type"] == "welcome":
            self.last = message["last"]
            self.instances.add(message["instance"])
            self._connected.set()
        elif message["type"] == "ack":
            self.pending.pop(message["cid"], None)
        elif message["type"] == "message":
            self.last = message["id"]
            if message["cid"] not in self.received:  # sent twice: acknowledged once
                self.received.append(message["cid"])

    async def send(self, cid: str, text: str = "hello") -> None:
        self.pending[cid] = text
        if self._socket is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(json.dumps({"cid": cid, "text": text}))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def rolling_deploy(
    servers: Sequence[SubprocessServer],
    url: str,
    ca_file: str | Path | None = None,
    clients: int = 3,
    interval: float = 0.02,
) -> dict[str, Any]:
    """Chat through ``url`` while every server is restarted in turn (SIGTERM, then started
    again on its port); then wait until every client has every acknowledged message.

    Returns the counts, printed by the caller: sent, per-client received, reconnects.
    """
    progress = asyncio.Event()  # set by every client on every message it receives
    chatters = [ChatClient(url, ca_file, progress=progress) for _ in range(clients)]
    for chatter in chatters:
        await chatter.start()
    sent: list[str] = []

    async def chat() -> None:
        while True:
            cid = f"m{len(sent) + 1}"
            sent.append(cid)
            await chatters[len(sent) % clients].send(cid)
            await asyncio.sleep(interval)

    talking = asyncio.create_task(chat())
    try:
        for server in servers:
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
    finally:
        talking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talking
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(scaled(10)):
            while not all(
                len(chatter.received) == len(sent) and not chatter.pending for chatter in chatters
            ):
                progress.clear()
                await progress.wait()
    for chatter in chatters:
        await chatter.stop()
    return {
        "sent": len(sent),
        "received": [len(chatter.received) for chatter in chatters],
        "same order": all(chatter.received == chatters[0].received for chatter in chatters),
        "reconnects": sum(chatter.reconnects for chatter in chatters),
    }


async def through_nginx(
    observe: Callable[..., Awaitable[Any]],
    servers: Sequence[Any],
    location: str,
    path: str = "/ws",
    read_timeout: float = 60,
    **arguments: Any,
) -> None:
    """``await observe(url, **arguments)`` with ``url`` through an nginx in front of
    ``servers`` configured with ``location``; says so when nginx is not installed."""
    if find_nginx() is None:
        print("skipped: nginx is not installed (Debian's `nginx` package)")
        return
    ports = [server.port for server in servers]
    with Nginx(ports, location, read_timeout=read_timeout) as proxy:
        await observe(proxy.ws_url(path), **arguments)


async def quiet(url: str, seconds: float, ca_file: str | Path | None = None) -> float | None:
    """Hold a WebSocket open without sending for up to ``seconds``; print and return when
    it was cut (None: still open). Pings the server sends are answered, as browsers do."""
    start = time.monotonic()
    async with websockets.connect(url, ssl=tls(ca_file), ping_interval=None) as websocket:
        try:
            async with asyncio.timeout(seconds):
                async for _ in websocket:
                    pass
        except TimeoutError:
            print(f"still open after {seconds:.1f} s of quiet")
            return None
        except ConnectionClosed:
            pass
        cut = time.monotonic() - start
        code = websocket.close_code if websocket.close_code is not None else 1006
        print(f"cut after {cut:.1f} s of quiet: close code {code}")
        return cut


async def meet(url: str, ca_file: str | Path | None = None, wait: float = 1.0) -> bool:
    """Clients A and B join the same room at ``url``; A says hello. Prints what each saw
    and returns whether B received A's message within ``wait`` seconds."""
    async with (
        websockets.connect(url, ssl=tls(ca_file)) as a,
        websockets.connect(url, ssl=tls(ca_file)) as b,
    ):
        print("A:", await a.recv())
        print("B:", await b.recv())
        await a.send("hello from A")
        try:
            print("B received:", await asyncio.wait_for(b.recv(), scaled(wait)))
            return True
        except TimeoutError:
            print(f"B received nothing within {wait} s")
            return False


def supervised(path: str | Path, sig: signal.Signals, timeout: float = 10.0) -> tuple[int, int]:
    """Run the supervisor script at ``path``, send it ``sig`` once its servers run, and
    return its exit status and how many of its servers it left running (stopped here)."""
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    children = [int(pid) for pid in re.findall(r"\d+", process.stdout.readline())]
    status = end_process(process, sig, timeout)
    process.stdout.close()
    left = [pid for pid in children if alive(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + scaled(5)
    while any(alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.02)  # not our children: nothing to wait on
    return status, len(left)


def supervise(path: str | Path, sig: signal.Signals) -> None:
    """Print how the supervisor at ``path`` ends on ``sig`` and what it leaves running."""
    status, left = supervised(path, sig)
    ended = f"by {signal.Signals(-status).name}" if status < 0 else f"with status {status}"
    print(f"supervisor ended {ended}; servers it left running: {left}")
