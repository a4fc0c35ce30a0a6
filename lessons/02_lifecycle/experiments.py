"""Lesson 02's experiments: what a client observes in one situation, printed in a line or two.

Each keeps a notebook cell to the point (the app under test and what to look for) and does
the waiting, the timeouts and the cleanup itself. In the notebook's order:

- ``echo_delay_during_report(server)``: an unrelated client's round trip while a report runs (P07).
- ``in_process_answer(app, path)`` / ``handshake_answer(app, path)``: how a handshake is
  answered to Starlette's ``TestClient``, and to a real client on a real server (P09, P34).
- ``post(url)`` and ``received_within(client, seconds)``: push with one HTTP POST, and every
  message that arrives within a window (P08).
- ``leave_then_ask(url)``: one client sends a bad message and leaves; does the server
  still answer another (P05)?
- ``stop_with_a_stalled_client(app)``: does uvicorn's shutdown finish while one client
  has stopped reading (P33)?
- ``start_soon(target)``: a ``SubprocessServer`` starting in the background, for a later cell.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient, Message, stalled_client
from lessons.kit.observe import server_log
from lessons.kit.probes import answer_and_log
from lessons.kit.server import LiveServer, SubprocessServer, bind_socket
from lessons.kit.timing import eventually, scaled


async def echo_delay_during_report(server: LiveServer | SubprocessServer) -> float:
    """Seconds an echo on ``/ws/echo`` takes while ``/ws/report`` runs a report."""
    async with (
        LiveClient(server.ws_url("/ws/echo")) as other,
        LiveClient(server.ws_url("/ws/report")) as reporter,
    ):
        await reporter.send("go")
        await reporter.receive()  # "report started"
        started = time.perf_counter()
        await other.send("ping")
        await other.receive(timeout=5)
        delay = time.perf_counter() - started
        await reporter.receive(timeout=5)  # the report itself
    return delay


def in_process_answer(app: Any, path: str) -> str:
    """How Starlette's ``TestClient`` reports the handshake on ``path``."""
    with TestClient(app) as client:
        try:
            with client.websocket_connect(path):
                return "accepted"
        except WebSocketDenialResponse as denied:  # a subclass of WebSocketDisconnect
            return f"WebSocketDenialResponse {denied.status_code}, body {denied.text}"
        except WebSocketDisconnect as closed:
            return f"a close with code {closed.code}, reason {closed.reason!r}"


async def handshake_answer(app: Any, path: str, log: bool = False) -> str:
    """How a real server answers a real client's handshake on ``path``: ``HTTP 403,
    an empty body`` or ``101, accepted``. The server's log is captured, not printed; with
    ``log=True`` its warnings and errors are printed after the answer."""
    answer, warnings = await answer_and_log(app, path)
    if log:
        answer += "; server log: " + ("; ".join(warnings) if warnings else "nothing")
    return answer


def post(url: str) -> str:
    """POST ``url`` (no body); the status and the JSON answer, as ``200 {...}``."""
    response = httpx.post(url, timeout=scaled(5), verify=False)  # plain HTTP: no CA bundle to load
    return f"{response.status_code} {response.json()}"


async def received_within(client: LiveClient, seconds: float) -> list[Message]:
    """Every message ``client`` receives within ``seconds`` (stops early if it closes)."""
    messages: list[Message] = []
    deadline = time.perf_counter() + scaled(seconds)
    try:
        while (left := deadline - time.perf_counter()) > 0:
            async with asyncio.timeout(left):
                messages.append(await client.connection.recv())
    except (TimeoutError, ConnectionClosed):
        pass
    return messages


async def _first(client: LiveClient, seconds: float) -> str:
    """The first message within ``seconds``, or that nothing came."""
    try:
        return repr(await client.receive(timeout=seconds))
    except (TimeoutError, ConnectionClosed):
        return f"nothing within {seconds} s"


async def leave_then_ask(url: str, window: float = 0.1) -> None:
    """One client sends ``abc`` to a doubling server and leaves; another then sends ``21``.

    Prints what each got back within ``window`` s (``42`` is the answer of a server that
    still works)."""
    async with LiveClient(url, close_timeout=0.2) as other:
        async with LiveClient(url, close_timeout=0.2) as leaver:
            await leaver.send("abc")
            print("the leaver sent 'abc', got:", await _first(leaver, window))
        await other.send("21")
        print("after it left, another client sent '21', got:", await _first(other, window))


async def stop_with_a_stalled_client(app: Any, patience: float = 0.4, **options: Any) -> None:
    """Serve ``app`` under uvicorn in a thread; one client stops reading ``/ws/snapshot``, a
    healthy one is on ``/ws/echo``. Stop the server as uvicorn's SIGTERM handler does (it
    sets ``should_exit``) and print what happens; force the exit after ``patience`` s."""
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, **options))
    with bind_socket() as sock, server_log():
        thread = threading.Thread(target=asyncio.run, args=(server.serve([sock]),), daemon=True)
        thread.start()
        try:
            await eventually(lambda: server.started)
            url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
            with stalled_client(url + "/ws/snapshot") as stalled:
                stalled.recv(1)  # the server is sending the snapshot now, and will stall
                async with LiveClient(url + "/ws/echo") as healthy:
                    server.should_exit = True  # what SIGTERM does
                    print("stopping: the healthy client saw", await healthy.wait_closed())
                started = time.perf_counter()
                await asyncio.to_thread(thread.join, scaled(patience))
                if thread.is_alive():
                    print(f"{patience} s later uvicorn is still waiting (forcing the exit now)")
                else:
                    print(f"uvicorn finished {time.perf_counter() - started:.1f} s later")
        finally:
            server.force_exit = True  # what a second Ctrl-C does
            await asyncio.to_thread(thread.join, scaled(5))


class StartedSoon:
    """A ``SubprocessServer`` starting in a background thread. ``await`` it for the running
    server; if that has stopped since (a cell that kills it, run again), it starts again."""

    def __init__(self, server: SubprocessServer) -> None:
        self.server = server
        self.starting = asyncio.ensure_future(asyncio.to_thread(server.start))

    def __await__(self) -> Generator[Any, None, SubprocessServer]:
        return self.running().__await__()

    async def running(self) -> SubprocessServer:
        await self.starting
        if not self.server.running:
            await asyncio.to_thread(self.server.start)
        return self.server


def start_soon(target: str | Path, **options: Any) -> StartedSoon:
    """Start ``SubprocessServer(target, **options)`` in a thread and return at once; a later
    cell gets the running server with ``child = await started`` (the kit stops it at exit if
    nothing else does). A new process spends about a second importing FastAPI: started
    early, that second passes while other cells run."""
    return StartedSoon(SubprocessServer(target, **options))
