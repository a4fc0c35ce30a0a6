"""Lesson 06's app, in process (TestClient) and on real uvicorn instances sharing a Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lessons import find
from lessons.kit import LiveClient
from lessons.kit.cleanup import leaves_promptly
from lessons.kit.cluster import cluster
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer, free_port

LESSON = find("06_deploy")


@pytest.fixture
def app_module(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("BROKER_URL", redis_server.url)
    monkeypatch.setenv("HEARTBEAT", "0.2")
    return LESSON.module("app")


def welcome(ws: Any) -> dict[str, Any]:
    message = ws.receive_json()
    assert message["type"] == "welcome"
    return message


def next_of(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = ws.receive_json()
        if message["type"] == kind:
            return message


def test_the_page_is_served(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client:
        assert client.get("/").text == (LESSON.path / "index.html").read_text(encoding="utf-8")


def test_a_message_is_acknowledged_and_reaches_the_room(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client:
        with client.websocket_connect("/ws/lobby") as a, client.websocket_connect("/ws/lobby") as b:
            welcome(a), welcome(b)
            a.send_json({"cid": "c1", "text": "hello"})
            ack = next_of(a, "ack")
            assert ack["cid"] == "c1"
            got = next_of(b, "message")
            assert (got["text"], got["cid"], got["id"]) == ("hello", "c1", ack["id"])


def test_a_client_resumes_after_its_last_id(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client:
        with client.websocket_connect("/ws/resume") as a:
            welcome(a)
            ids = []
            for n in range(3):
                a.send_json({"cid": f"c{n}", "text": f"m{n}"})
                ids.append(next_of(a, "ack")["id"])
        with client.websocket_connect(f"/ws/resume?last={ids[0]}") as late:
            welcome(late)
            missed = [next_of(late, "message") for _ in range(2)]
            assert [m["text"] for m in missed] == ["m1", "m2"]


def test_the_heartbeat_pings_a_quiet_client(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client, client.websocket_connect("/ws/quiet") as ws:
        welcome(ws)
        assert ws.receive_json() == {"type": "ping"}


@pytest.mark.parametrize("path", ["/ws/Bad%20Room", "/ws/lobby?last=abc"])
def test_a_bad_room_or_resume_id_is_refused_with_1008(app_module: ModuleType, path: str) -> None:
    with TestClient(app_module.app) as client, pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect(path) as ws:
            ws.receive_json()
    assert closed.value.code == 1008


def test_a_message_that_is_not_json_gets_an_error_event(app_module: ModuleType) -> None:
    with TestClient(app_module.app) as client, client.websocket_connect("/ws/lobby") as ws:
        welcome(ws)
        ws.send_text("not json")
        assert next_of(ws, "error")["error"]


@pytest.mark.anyio
async def test_the_lifespan_ends_when_redis_py_swallows_a_readers_cancellation(
    app_module: ModuleType,
) -> None:
    """A room's reader stopped at once after it starts: redis-py can swallow a cancellation
    that lands while it reads; a lifespan that cancelled once, then waited, never ended."""

    @contextlib.asynccontextmanager
    async def a_room_read() -> AsyncIterator[None]:
        async with app_module.lifespan(app_module.app):
            await app_module.join("lobby", None)
            yield

    await leaves_promptly(a_room_read)


def test_without_redis_the_page_loads_and_a_client_is_told_to_retry_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    app = LESSON.module("app").app
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        with (
            client.websocket_connect("/ws/lobby") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
    assert closed.value.code == 1013


@pytest.fixture
def two_instances(redis_server: RedisServer) -> Iterator[list[SubprocessServer]]:
    servers = cluster(LESSON.file("app"), redis_server.url, instances=2, log_level="warning")
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.anyio
async def test_clients_on_two_instances_share_the_room_and_resume_across_them(
    two_instances: list[SubprocessServer],
) -> None:
    first, second = (server.ws_url("/ws/lobby") for server in two_instances)
    async with LiveClient(first, name="a") as a, LiveClient(second, name="b") as b:
        welcomes = [await a.receive_json(), await b.receive_json()]
        assert welcomes[0]["instance"] != welcomes[1]["instance"]
        await a.send_json({"cid": "x1", "text": "across"})
        got = await b.receive_json()
        assert (got["type"], got["text"]) == ("message", "across")
        await a.send_json({"cid": "x2", "text": "missed"})
    async with LiveClient(f"{first}?last={got['id']}", name="late") as late:
        await late.receive_json()  # welcome
        missed = await late.receive_json()
        assert missed["text"] == "missed"
