"""The capstone task board: two processes over Redis, authenticated, live in the browser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lessons import ROOT_DIR, load_module
from lessons.kit import LiveClient, SubprocessServer
from lessons.kit.redis_server import RedisServer

APP = ROOT_DIR / "notebooks" / "capstone" / "app.py"
SECRET = "capstone-test-secret-of-at-least-32-bytes"
Board = tuple[SubprocessServer, SubprocessServer]


@pytest.fixture
def board(redis_server: RedisServer) -> Iterator[Board]:
    """Two app processes sharing one Redis and one signing secret."""
    env = {"REDIS_URL": redis_server.url, "WSLAB_JWT_SECRET": SECRET}
    with SubprocessServer(APP, env=env) as first, SubprocessServer(APP, env=env) as second:
        yield first, second


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def login(
    http: httpx.AsyncClient, server: SubprocessServer, user: str = "ada", password: str = "lovelace"
) -> dict[str, str]:
    """Log in over HTTP; the Authorization header that carries the token."""
    reply = await http.post(
        f"{server.http_url}/login", json={"username": user, "password": password}
    )
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['token']}"}


async def subscribe(server: SubprocessServer, auth: dict[str, str], name: str) -> LiveClient:
    client = await LiveClient(server.ws_url("/ws/tasks"), name=name).connect()
    await client.send_json({"token": auth["Authorization"].removeprefix("Bearer ")})
    assert (await client.receive_json())["type"] == "hello"
    return client


@pytest.mark.anyio
async def test_a_change_on_one_process_reaches_clients_of_both(
    board: Board, http: httpx.AsyncClient
) -> None:
    first, second = board
    ada, alan = await login(http, first), await login(http, second, "alan", "turing")
    watchers = [await subscribe(server, ada, server.http_url) for server in board]
    try:
        created = await http.post(f"{first.http_url}/tasks", json={"title": "x"}, headers=ada)
        assert created.status_code == 201
        task = created.json()
        for client in watchers:
            event = await client.receive_json()
            assert (event["type"], event["task"], event["user"]) == ("task_created", task, "ada")
        url = f"{second.http_url}/tasks/{task['id']}"
        updated = await http.put(url, json={"done": True}, headers=alan)
        assert updated.json() == {**task, "done": True}
        for client in watchers:
            event = await client.receive_json()
            assert (event["type"], event["task"], event["user"]) == (
                "task_updated",
                {**task, "done": True},
                "alan",
            )
        listing = await http.get(f"{first.http_url}/tasks", headers=ada)
        assert {**task, "done": True} in listing.json()
    finally:
        for client in watchers:
            await client.close()


@pytest.mark.anyio
async def test_failed_changes_publish_nothing(board: Board, http: httpx.AsyncClient) -> None:
    first, _ = board
    ada = await login(http, first)
    watcher = await subscribe(first, ada, "watcher")
    try:
        tasks = f"{first.http_url}/tasks"
        empty = await http.post(tasks, json={"title": ""}, headers=ada)
        missing = await http.put(f"{tasks}/999999", json={"done": True}, headers=ada)
        anonymous = await http.post(tasks, json={"title": "sneaky"})
        assert (empty.status_code, missing.status_code, anonymous.status_code) == (422, 404, 401)
        await watcher.receive_nothing(within=0.5)
    finally:
        await watcher.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "first_message", ['{"token": "garbage"}', "not json", "[1, 2]", '{"no": "token"}']
)
async def test_sockets_must_authenticate_first(board: Board, first_message: str) -> None:
    async with LiveClient(board[0].ws_url("/ws/tasks")) as client:
        await client.send(first_message)
        code, reason = await client.wait_closed()
    assert code == 1008 and reason and "authenticate first" in reason


@pytest.mark.anyio
async def test_wrong_password_is_refused(board: Board, http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        await login(http, board[0], "ada", "wrong")


def test_in_process_tier(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("WSLAB_JWT_SECRET", SECRET)
    with TestClient(load_module(APP).app) as client:
        token = client.post("/login", json={"username": "ada", "password": "lovelace"})
        token.raise_for_status()
        with client.websocket_connect("/ws/tasks") as ws:
            ws.send_json({"token": token.json()["token"]})
            assert ws.receive_json()["user"] == "ada"
            auth = {"Authorization": f"Bearer {token.json()['token']}"}
            task = client.post("/tasks", json={"title": "in process"}, headers=auth).json()
            event = ws.receive_json()
            assert (event["type"], event["task"]) == ("task_created", task)
        with client.websocket_connect("/ws/tasks") as ws:
            ws.send_json({"token": "forged"})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
    assert closed.value.code == 1008


@pytest.mark.browser
def test_page_shows_a_task_created_on_the_other_process(
    board: Board, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    first, second = board
    page = new_page()
    page.goto(first.http_url + "/")
    page.click("text=Log in")
    expect(page.locator("#status")).to_have_text("live as ada")
    token = httpx.post(
        f"{second.http_url}/login", json={"username": "alan", "password": "turing"}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{second.http_url}/tasks", json={"title": "seen live"}, headers=auth)
    expect(page.locator("#tasks li", has_text="seen live")).to_be_visible()
    page.fill("#title", "added in the page")
    page.keyboard.press("Enter")
    expect(page.locator("#tasks li", has_text="added in the page")).to_be_visible()
    page.locator("#tasks li", has_text="seen live").locator("input").check()
    expect(page.locator("#tasks li span.done", has_text="seen live")).to_be_visible()
    listing = httpx.get(f"{second.http_url}/tasks", headers=auth).json()
    assert {(task["title"], task["done"]) for task in listing} >= {
        ("seen live", True),
        ("added in the page", False),
    }
