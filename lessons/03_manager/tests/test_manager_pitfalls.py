"""Lesson 03's pitfalls P10-P18: each broken file fails as a client sees it; its fix does not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed

from lessons import find
from lessons.kit import LiveClient, LiveServer, eventually, scaled
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import free_port

LESSON = find("03_manager")
EXPERIMENTS = LESSON.module("experiments")
CLIENT, StalledRoom, sockets = EXPERIMENTS.CLIENT, EXPERIMENTS.StalledRoom, EXPERIMENTS.sockets


def crashes(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    """The exceptions uvicorn logged as "Exception in ASGI application"."""
    return [
        record.exc_info[1]
        for record in caplog.records
        if record.getMessage().startswith("Exception in ASGI") and record.exc_info
    ]


async def stats(server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        return (await http.get("/stats")).json()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.ERROR, logger="uvicorn.error")
    return caplog


# P10: list.remove twice.


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_double_disconnect", "fix_double_disconnect"])
async def test_p10_double_disconnect(stem: str, logged: pytest.LogCaptureFixture) -> None:
    with LiveServer(LESSON.app(stem), log_level="error") as server:
        async with (
            LiveClient(server.ws_url("/ws?user=ann")) as ann,
            LiveClient(server.ws_url("/ws?user=bob")) as bob,
        ):
            await ann.close()
            assert await bob.receive() == "ann left"
            await bob.send("anyone?")
            assert await bob.receive() == "bob: anyone?"  # ann's handler has finished by now
    errors = crashes(logged)
    if stem.startswith("pitfall"):
        # Every departure crashes its handler: ann's, then bob's at the end.
        assert [type(e) for e in errors] == [ValueError, ValueError]
        assert "not in list" in str(errors[0])
    else:
        assert errors == []


# P11 and P12: a dead socket in the broadcast.

DEAD_SOCKET = {
    "pitfall_dead_socket": "/ws?user=",
    "fix_dead_socket": "/ws?user=",
    "pitfall_set_iteration": "/ws/room?user=",
    "fix_set_iteration": "/ws/room?user=",
}


@pytest.mark.anyio
@pytest.mark.parametrize("stem", DEAD_SOCKET)
async def test_p11_p12_a_dead_socket_in_the_broadcast(
    stem: str, logged: pytest.LogCaptureFixture
) -> None:
    with LiveServer(LESSON.app(stem), log_level="error") as server:
        url = server.ws_url(DEAD_SOCKET[stem])
        async with (
            LiveClient(url + "ann") as ann,
            LiveClient(url + "bob") as bob,
            LiveClient(url + "cat") as cat,
        ):
            await bob.send("bye")
            assert (await bob.wait_closed())[0] == 1000  # bob is gone, his socket stays listed
            await ann.send("hi")
            if stem.startswith("fix"):
                for ws in (ann, cat):
                    assert await ws.receive() == "ann: hi"
                await cat.send("still up")
                assert await ann.receive() == "cat: still up"
            else:
                assert (await ann.wait_closed())[0] == 1006  # the sender's handler crashed
                if stem == "pitfall_dead_socket":
                    await cat.receive_nothing(within=0.3)  # listed after bob: missed it
    errors = crashes(logged)
    if stem == "pitfall_dead_socket":
        assert [type(e).__name__ for e in errors] == ["WebSocketDisconnected"]
        assert "once a close message has been sent" in str(errors[0])
    elif stem == "pitfall_set_iteration":
        assert [type(e) for e in errors] == [RuntimeError]
        assert str(errors[0]) == "Set changed size during iteration"
    else:
        assert errors == []


def p12_in_process(stem: str) -> str:
    """bob says bye (his socket stays in the room), then ann speaks: what ann hears."""
    with TestClient(LESSON.app(stem)) as client:
        with (
            client.websocket_connect("/ws/r?user=ann") as ann,
            client.websocket_connect("/ws/r?user=bob") as bob,
        ):
            bob.send_text("bye")
            assert bob.receive()["type"] == "websocket.close"
            ann.send_text("hi")
            return ann.receive_text()


def test_p12_in_process_pitfall_raises() -> None:
    with pytest.raises(RuntimeError, match="Set changed size during iteration"):
        p12_in_process("pitfall_set_iteration")


def test_p12_in_process_fix_delivers() -> None:
    assert p12_in_process("fix_set_iteration") == "ann: hi"


# P13: a client that stops reading. P36: a dropped client that is never freed.


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_slow_consumer", "fix_slow_consumer"])
async def test_p13_one_stalled_client(stem: str) -> None:
    """The naive loop stops for everyone after a few MB; the queued one delivers everything."""
    async with StalledRoom(LESSON.app(stem)) as room:
        heard = await room.flood(messages=100)  # 6.6 MB: more than the stalled client holds
        [held] = room.server_side()
    assert held.state == "ESTAB" and held.owned and held.unsent > 1_000_000
    if stem.startswith("pitfall"):
        assert 10 < heard < 100, heard  # a few MB, then nothing for anyone
    else:
        assert heard == 100


def dropping(stem: str) -> tuple[ModuleType, dict[str, Any]]:
    """A P36 app with a short close deadline, and the uvicorn protocol to serve it with."""
    module = LESSON.module(stem)
    module.CLOSE_TIMEOUT = 0.3
    return module, {"ws": getattr(module, "BoundedClose", "websockets-sansio")}


@pytest.mark.anyio
async def test_p36_broken_the_server_keeps_a_dropped_client_while_it_is_silent() -> None:
    module, options = dropping("pitfall_stalled_close")
    async with StalledRoom(module.app, **options) as room:
        await room.flood(messages=200)
        assert await room.clients() == 2  # dropped, and its handler has ended
        await asyncio.sleep(10 * module.CLOSE_TIMEOUT)  # long past every deadline
        [held] = room.server_side()
        assert held.state == "ESTAB" and held.owned and held.unsent > 1_000_000
        got, code = await room.read_again()
    assert got > 10 and code == 1006  # the whole backlog, then no close frame: never 1013


@pytest.mark.anyio
async def test_p36_fixed_a_dropped_client_is_aborted_within_the_deadline() -> None:
    """No socket of the server's process is left for the client once both deadlines have
    passed (``ss`` may list the kernel's orphan a while); reading again, it sees 1006."""
    module, options = dropping("fix_stalled_close")
    async with StalledRoom(module.app, **options) as room:
        await room.flood(messages=200)
        assert await room.clients() == 2
        await eventually(room.released, timeout=3)
        _, code = await room.read_again()
    assert code == 1006


@pytest.mark.anyio
async def test_p36_fixed_a_client_reading_again_before_the_deadline_leaves_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``slow`` reads its backlog between the handler's end and the abort: the graceful
    close completes, and the deadline then finds nothing to abort. asyncio's ``abort()``
    raises on such a connection (CPython 3.11-3.13), which the loop would log as an error."""
    module = LESSON.module("fix_stalled_close")
    module.CLOSE_TIMEOUT = 1.0  # the abort's deadline: time enough to read the backlog
    handler_ended = threading.Event()

    class Watched(module.BoundedClose):  # type: ignore[name-defined,misc]
        async def run_asgi(self) -> None:
            await super().run_asgi()  # the deadline is set: CLOSE_TIMEOUT from now
            handler_ended.set()

    caplog.set_level(logging.ERROR, logger="asyncio")
    async with StalledRoom(module.app, ws=Watched) as room:
        await room.flood(messages=200)
        assert await asyncio.to_thread(handler_ended.wait, scaled(5))
        _, code = await room.read_again()
        assert code == 1006  # closed by the server, before its deadline
        await asyncio.sleep(2 * module.CLOSE_TIMEOUT)  # past the deadline: nothing happens
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]


async def hub_frees_a_dropped_client(http_url: str, port: int, within: float) -> None:
    """A slow client of the chat at ``http_url`` (served on ``port``) stops reading while
    another floods the lobby: the Hub drops it, and within ``within`` s the server's process
    no longer holds its socket."""
    url = http_url.replace("http", "ws", 1) + "/ws/lobby?user="
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # stall sooner
    small.connect(("127.0.0.1", port))
    async with (
        LiveClient(url + "slow", sock=small, **CLIENT) as slow,
        LiveClient(url + "pen", **CLIENT) as pen,
        httpx.AsyncClient(base_url=http_url) as http,
    ):
        await slow.receive()
        slow.connection.transport.pause_reading()
        slow_port = slow.connection.transport.get_extra_info("sockname")[1]
        text = json.dumps({"type": "message", "text": "x" * 1000})
        for _ in range(100):  # up to 10 MB
            for _ in range(100):
                await pen.send(text)
            if (await http.get("/stats")).json()["dropped"]:
                break
        assert sockets(port, slow_port), "the server still holds it within the deadlines"
        await eventually(lambda: not any(h.owned for h in sockets(port, slow_port)), within)
        slow.connection.transport.abort()


@pytest.mark.anyio
async def test_p36_the_chat_hub_frees_a_dropped_client_served_with_the_fix(serve) -> None:
    """app.py runs on stock uvicorn; served with P36's protocol (uvicorn-specific, so not in
    the app), its Hub drops the slow client and the fix's deadline aborts its connection."""
    module = LESSON.module("app")
    module.QUEUE_SIZE, module.CLOSE_TIMEOUT = 32, 0.3
    fix = LESSON.module("fix_stalled_close")
    fix.CLOSE_TIMEOUT = 0.3
    live = serve(module.app, ws=fix.BoundedClose)
    await hub_frees_a_dropped_client(live.http_url, live.port, within=5)


# P14: keyed by user id.


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_replaced_connection", "fix_replaced_connection"])
async def test_p14_two_tabs_of_one_user(stem: str, serve) -> None:
    server = serve(LESSON.app(stem))
    async with (
        LiveClient(server.ws_url("/ws?user=alice"), name="tab1") as tab1,
        LiveClient(server.ws_url("/ws?user=alice"), name="tab2") as tab2,
        LiveClient(server.ws_url("/ws?user=bob")) as bob,
    ):
        await bob.send("hi")
        assert await tab2.receive() == "bob: hi"
        if stem.startswith("pitfall"):
            await tab1.receive_nothing(within=0.3)  # silently replaced
        else:
            assert await tab1.receive() == "bob: hi"
        await tab1.close()
        await bob.send("still there?")
        assert await bob.receive() == "bob: hi"
        assert await bob.receive() == "bob: still there?"
        if stem.startswith("pitfall"):
            await tab2.receive_nothing(within=0.3)  # tab1 leaving removed tab2
            assert await stats(server) == {"users": 1, "connections": 1}
        else:
            assert await tab2.receive() == "bob: still there?"
            assert await stats(server) == {"users": 2, "connections": 2}


# P15: leaked registrations.


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_leaked_connections", "fix_leaked_connections"])
async def test_p15_abrupt_exits(stem: str, serve) -> None:
    clients = 100
    server = serve(LESSON.app(stem))
    for _ in range(clients):
        async with LiveClient(server.ws_url("/ws")) as client:
            await client.send("hi")
            await client.receive()
            client.connection.transport.abort()  # no close frame: the process just died
    counts = await eventually(lambda: _idle(server))
    assert counts["registered"] == (clients if stem.startswith("pitfall") else 0)


async def _idle(server: LiveServer) -> dict[str, Any] | None:
    counts = await stats(server)
    return counts if counts["handlers"] == 0 else None


@pytest.mark.parametrize("stem", ["pitfall_leaked_connections", "fix_leaked_connections"])
def test_p15_in_process(stem: str) -> None:
    module = LESSON.module(stem)
    with TestClient(module.app) as client:
        for _ in range(20):
            with client.websocket_connect("/ws") as ws:
                ws.send_text("hi")
                assert ws.receive_text().startswith("hi (")
        leaked = client.get("/stats").json()["registered"]
    assert leaked == (20 if stem.startswith("pitfall") else 0)


# P16: events for changes that did not happen.


@pytest.mark.parametrize("stem", ["pitfall_uncommitted_event", "fix_uncommitted_event"])
def test_p16_failed_change_and_its_event(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client, client.websocket_connect("/ws/tasks") as events:
        assert client.post("/tasks", json={"title": "a"}).status_code == 201
        assert events.receive_json()["type"] == "task_created"
        assert client.post("/tasks", json={"title": "a"}).status_code == 409
        assert client.put("/tasks/7", json={"done": True}).status_code == 404
        assert client.post("/tasks", json={"title": "b"}).status_code == 201
        seen = [events.receive_json() for _ in range(3 if stem.startswith("pitfall") else 1)]
    assert client.get("/tasks").json() == [
        {"id": 1, "title": "a", "done": False},
        {"id": 2, "title": "b", "done": False},
    ]
    if stem.startswith("pitfall"):  # two events for changes that failed
        assert seen[0] == {"type": "task_created", "task": {"title": "a"}}
        assert seen[1] == {"type": "task_updated", "task": {"id": 7, "done": True}}
    else:  # the next event after the failures is the real next change, with its id
        assert seen == [{"type": "task_created", "task": {"id": 2, "title": "b", "done": False}}]


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_uncommitted_event", "fix_uncommitted_event"])
async def test_p16_real(stem: str, serve) -> None:
    server = serve(LESSON.app(stem))
    async with (
        LiveClient(server.ws_url("/ws/tasks")) as events,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        assert (await http.put("/tasks/1", json={"done": True})).status_code == 404
        if stem.startswith("pitfall"):
            assert (await events.receive_json())["type"] == "task_updated"
        else:
            await events.receive_nothing(within=0.3)


# P17: duplicate push loops.


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_duplicate_push_loop", "fix_duplicate_push_loop"])
async def test_p17_quick_reconnect(stem: str, serve) -> None:
    module = LESSON.module(stem)
    module.INTERVAL = scaled(0.5)  # the reconnect must land inside the first loop's sleep
    server = serve(module.app)
    async with LiveClient(server.ws_url("/ws/dashboard")) as first:
        assert (await first.receive_json())["loop"] == 1
    # Reconnect at once, while the first loop still sleeps.
    async with LiveClient(server.ws_url("/ws/dashboard")) as again:
        pushes = [await again.receive_json() for _ in range(4)]
        loops = (await stats(server))["push_loops"]
    sources = {push["loop"] for push in pushes}
    if stem.startswith("pitfall"):
        assert sources == {1, 2} and loops == 2  # the old loop carries on beside the new one
    else:
        assert sources == {2} and loops == 1
        assert [push["tick"] for push in pushes] == [1, 2, 3, 4]


@pytest.mark.anyio
async def test_p17_fix_stops_the_loop_with_the_last_watcher(serve) -> None:
    module = LESSON.module("fix_duplicate_push_loop")
    module.INTERVAL = scaled(0.5)
    server = serve(module.app)
    async with LiveClient(server.ws_url("/ws/dashboard")) as watcher:
        assert (await watcher.receive_json())["loop"] == 1
        task = module.manager.task
    await eventually(lambda: module.manager.running == 0)  # cancelled mid-sleep, at once
    assert module.manager.task is None and task.cancelled()


# P18: several worker processes.


@pytest.mark.anyio
async def test_p18_two_processes_each_see_only_their_own_clients(serve_file) -> None:
    target = LESSON.file("pitfall_worker_processes")
    one, two = serve_file(target), serve_file(target)
    async with (
        LiveClient(one.ws_url("/ws?user=ann")) as ann,
        LiveClient(two.ws_url("/ws?user=bob")) as bob,
    ):
        assert await ann.receive() != await bob.receive()  # two different processes
        await ann.send("hello everyone")
        assert await ann.receive() == "ann: hello everyone"
        await bob.receive_nothing(within=0.5)


@pytest.mark.anyio
async def test_p18_fix_through_redis_reaches_every_process(
    redis_server: RedisServer, serve_file
) -> None:
    from redis.asyncio import Redis

    target = LESSON.file("fix_worker_processes")
    env = {"REDIS_URL": redis_server.url}
    one, two = serve_file(target, env=env), serve_file(target, env=env)
    async with Redis.from_url(redis_server.url) as redis:
        # Each process subscribes as it starts: wait until both listen.
        await eventually(lambda: subscribers(redis))
    async with (
        LiveClient(one.ws_url("/ws?user=ann")) as ann,
        LiveClient(two.ws_url("/ws?user=bob")) as bob,
    ):
        assert await ann.receive() != await bob.receive()
        await ann.send("hello everyone")
        for ws in (ann, bob):
            assert await ws.receive() == "ann: hello everyone"


async def subscribers(redis: Any) -> bool:
    [(_, count)] = await redis.pubsub_numsub("chat")
    return count == 2


@contextmanager
def uvicorn_workers(module: str, workers: int = 2) -> Iterator[int]:
    """``python -m uvicorn --workers N`` on a free loopback port; yields the port.

    uvicorn binds the port itself, so another program may take it between ``free_port()``
    and then: uvicorn exits, and we try again on another port.
    """
    for _ in range(3):
        port = free_port()
        with uvicorn_process(module, workers, port) as started:
            if started:
                yield port
                return
    pytest.fail("uvicorn found its port taken three times in a row")


@contextmanager
def uvicorn_process(module: str, workers: int, port: int) -> Iterator[bool]:
    """Run uvicorn; yield True once every worker has started, False if it exited first."""
    command = [sys.executable, "-m", "uvicorn", "--workers", str(workers), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--app-dir", str(LESSON.path), f"{module}:app"]
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    ) as process:

        def read() -> None:
            for line in process.stdout or ():
                lines.put(line)
            lines.put(None)  # the process closed its output: it has exited

        reader = threading.Thread(target=read)
        reader.start()
        try:
            started = 0
            while started < workers:
                line = lines.get(timeout=scaled(20))
                if line is None:
                    break
                started += "Application startup complete" in line
            yield started == workers
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(scaled(10))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            reader.join(scaled(5))


@pytest.mark.anyio
async def test_p18_uvicorn_workers_split_the_room() -> None:
    """Under ``--workers 2`` the kernel spreads connections over both processes."""
    with uvicorn_workers("pitfalls.pitfall_worker_processes") as port:
        url = f"ws://127.0.0.1:{port}/ws?user="
        by_process: dict[str, list[LiveClient]] = {}
        clients: list[LiveClient] = []
        try:
            for n in range(200):  # the kernel decides; usually a handful suffice
                client = await LiveClient(url + f"u{n}").connect()
                clients.append(client)
                welcome = str(await client.receive())
                by_process.setdefault(re.sub(r"\D", "", welcome), []).append(client)
                if len(by_process) == 2:
                    break
            assert len(by_process) == 2, "200 connections all landed on one worker"
            here, there = by_process.values()
            await here[0].send("hello")
            assert await here[0].receive() == f"{here[0].url.rsplit('=', 1)[1]}: hello"
            for client in there:
                await client.receive_nothing(within=0.3)
        finally:
            for client in clients:
                try:
                    await client.close()
                except ConnectionClosed:
                    pass
