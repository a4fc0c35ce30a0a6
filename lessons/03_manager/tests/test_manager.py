"""Lesson 03's apps: the chat (app.py), the manager steps, the board, the dashboard, the canvas."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from lessons import find
from lessons.cli import main
from lessons.kit import LiveClient, LiveServer, eventually, handshake_status

LESSON = find("03_manager")


@pytest.fixture
def module() -> ModuleType:
    return LESSON.module()


@pytest.fixture
def client(module: ModuleType) -> Iterator[TestClient]:
    with TestClient(module.app) as test_client:
        yield test_client


def joined(ws: Any, user: str) -> dict[str, Any]:
    event = ws.receive_json()
    assert (event["type"], event["user"]) == ("join", user), event
    return event


# The chat, in process: Starlette's TestClient.


@pytest.mark.parametrize(
    ("stem", "pages"),
    [
        ("app", {"/": "index.html"}),
        ("manager_4_production", {"/": "index.html"}),
        ("board", {"/": "board.html"}),
        ("dashboard", {"/": "dashboard.html"}),
        ("canvas", {"/": "canvas.html"}),
    ],
)
def test_each_app_serves_its_page_files(stem: str, pages: dict[str, str]) -> None:
    with TestClient(LESSON.app(stem)) as test_client:
        for path, name in pages.items():
            served = test_client.get(path)
            assert served.status_code == 200
            assert served.text == (LESSON.path / name).read_text(encoding="utf-8")


def test_chat_join_message_whisper_and_leave(client: TestClient) -> None:
    with client.websocket_connect("/ws/lobby?user=ann") as ann:
        assert joined(ann, "ann")["members"] == ["ann"]
        with client.websocket_connect("/ws/lobby?user=bob") as bob:
            assert joined(bob, "bob")["members"] == ["ann", "bob"]
            assert joined(ann, "bob")["members"] == ["ann", "bob"]
            ann.send_json({"type": "message", "text": "hi"})
            assert bob.receive_json() == {"type": "message", "user": "ann", "text": "hi"}
            bob.send_json({"type": "whisper", "to": "ann", "text": "psst"})
            whisper = {"type": "whisper", "user": "bob", "text": "psst", "to": "ann"}
            assert ann.receive_json() == whisper  # ann's own "hi" never came back to her
        assert ann.receive_json() == {"type": "leave", "user": "bob", "members": ["ann"]}
        assert client.get("/stats").json() == {
            "clients": 1,
            "rooms": {"lobby": 1},
            "dropped": 0,
        }


def test_chat_rooms_are_separate(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws/lobby?user=ann") as ann,
        client.websocket_connect("/ws/other?user=cat") as cat,
    ):
        joined(ann, "ann"), joined(cat, "cat")
        ann.send_json({"type": "message", "text": "lobby only"})
        cat.send_json({"type": "whisper", "to": "ann", "text": "are you there?"})
        # The first thing cat gets is the answer to its own whisper: nothing from the lobby.
        assert cat.receive_json() == {"type": "error", "error": "nobody called 'ann'"}


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("{not json", "json_invalid"),
        ('{"type": "message"}', "missing"),
        ('{"type": "message", "text": ""}', "string_too_short"),
        ('{"type": "message", "text": "hi", "user": "eve"}', "extra_forbidden"),
        ('{"type": "shout", "text": "hi"}', "union_tag_invalid"),
        ('{"type": "whisper", "to": "no one", "text": "x"}', "string_pattern_mismatch"),
        (b"\x00binary", "json_invalid"),
    ],
)
def test_chat_bad_input_gets_an_error_event(
    client: TestClient, bad: str | bytes, error: str
) -> None:
    with client.websocket_connect("/ws/lobby?user=ann") as ann:
        joined(ann, "ann")
        ann.send_bytes(bad) if isinstance(bad, bytes) else ann.send_text(bad)
        event = ann.receive_json()
        assert event["type"] == "error" and event["error"][0]["type"] == error, event
        ann.send_json({"type": "whisper", "to": "ann", "text": "still here"})
        assert ann.receive_json()["text"] == "still here"


@pytest.mark.parametrize("path", ["/ws/lobby?user=", "/ws/lobby", "/ws/a b?user=x"])
def test_chat_refuses_a_bad_name_with_422_and_the_reason(client: TestClient, path: str) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path):
        pass
    assert denied.value.status_code == 422
    assert denied.value.json()["detail"][0]["loc"][0] in {"path", "query"}


# The chat on a real server.


@pytest.fixture
def live(module: ModuleType, serve) -> LiveServer:
    return serve(module.app)


@pytest.mark.anyio
async def test_real_chat_rooms(live: LiveServer) -> None:
    async with (
        LiveClient(live.ws_url("/ws/lobby?user=ann")) as ann,
        LiveClient(live.ws_url("/ws/lobby?user=bob")) as bob,
        LiveClient(live.ws_url("/ws/other?user=cat")) as cat,
    ):
        for ws in (ann, bob, cat):
            assert (await ws.receive_json())["type"] == "join"
        assert (await ann.receive_json())["members"] == ["ann", "bob"]
        await bob.send_json({"type": "message", "text": "hi ann"})
        assert (await ann.receive_json())["text"] == "hi ann"
        await bob.receive_nothing(within=0.2)
        await cat.receive_nothing(within=0.2)


@pytest.mark.anyio
async def test_real_chat_refuses_a_bad_name_with_422(live: LiveServer) -> None:
    assert await handshake_status(live.ws_url("/ws/lobby?user=no%20spaces")) == 422
    assert await handshake_status(live.ws_url("/ws/lobby")) == 422


def big_message(size: int = 1000) -> dict[str, str]:
    return {"type": "message", "text": os.urandom(size // 2).hex()}


async def fill_until_left(pen: LiveClient, ok: LiveClient, limit: int = 20_000) -> int:
    """Send until ``ok`` sees the stalled client leave; the number of messages sent."""
    left = False
    for sent in range(1, limit + 1):
        await pen.send_json(big_message())
        while (event := await ok.receive_json())["type"] != "message":
            left |= event["type"] == "leave" and event["user"] == "slow"
        if left:
            return sent
    raise AssertionError(f"the stalled client was never dropped after {limit} messages")


@pytest.mark.anyio
async def test_real_stalled_client_is_dropped_and_the_room_keeps_going(
    module: ModuleType, live: LiveServer
) -> None:
    """A client that never reads: dropped, its close given up after the deadline, counted."""
    module.QUEUE_SIZE, module.CLOSE_TIMEOUT = 32, 0.3
    url = live.ws_url("/ws/lobby?user=")
    async with (
        LiveClient(url + "slow", compression=None) as slow,
        LiveClient(url + "ok", max_queue=None) as ok,
        LiveClient(url + "pen", max_queue=None) as pen,
    ):
        await slow.receive_json()
        slow.connection.transport.pause_reading()  # never reads again
        for ws in (ok, pen):
            await ws.receive_json()
        await ok.receive_json()  # pen joined
        sent = await fill_until_left(pen, ok)
        assert sent * 1000 > 1_000_000  # it took megabytes of unread data to fill its buffers
        for _ in range(3):  # the room goes on at full speed
            await pen.send_json({"type": "message", "text": "still here"})
            assert (await ok.receive_json())["text"] == "still here"
        async with httpx.AsyncClient(base_url=live.http_url) as http:
            stats = (await http.get("/stats")).json()
        assert stats == {"clients": 2, "rooms": {"lobby": 2}, "dropped": 1}
        slow.connection.transport.abort()


@pytest.mark.anyio
async def test_real_slow_client_that_reads_again_within_the_deadline_sees_1013(
    module: ModuleType, live: LiveServer
) -> None:
    module.QUEUE_SIZE, module.CLOSE_TIMEOUT = 32, 30
    url = live.ws_url("/ws/lobby?user=")
    async with (
        LiveClient(url + "slow", compression=None, max_queue=None) as slow,
        LiveClient(url + "ok", max_queue=None),  # a healthy reader beside them
        LiveClient(url + "pen", max_queue=None) as pen,
    ):
        await slow.receive_json()
        slow.connection.transport.pause_reading()
        async with httpx.AsyncClient(base_url=live.http_url) as http:
            for _ in range(40):  # up to 8 MB: more than its buffers and its outbox hold
                for _ in range(200):
                    await pen.send_json(big_message())
                if await dropped(http):
                    break
            await eventually(lambda: dropped(http))
        slow.connection.transport.resume_reading()  # within the close deadline
        assert await slow.wait_closed() == (1013, "slow consumer: too far behind")


async def dropped(http: httpx.AsyncClient) -> bool:
    return bool((await http.get("/stats")).json()["dropped"])


# The manager steps: each one runs; each step's improvement is visible.


@contextmanager
def step_clients(stem: str, *paths: str) -> Iterator[list[Any]]:
    """In-process clients of a step app, connected in order to ``paths``."""
    with TestClient(LESSON.app(stem)) as test_client, ExitStack() as stack:
        yield [stack.enter_context(test_client.websocket_connect(path)) for path in paths]


def test_step_1_list_broadcasts_to_everyone_whatever_the_room() -> None:
    with step_clients("manager_1_list", "/ws/lobby?user=ann", "/ws/other?user=bob") as (a, b):
        a.send_text("hi")
        assert a.receive_text() == "ann: hi" and b.receive_text() == "ann: hi"


def test_step_2_dict_sends_personal_messages() -> None:
    with step_clients("manager_2_dict", "/ws/lobby?user=ann", "/ws/lobby?user=bob") as (a, b):
        a.send_text("@bob psst")
        assert b.receive_text() == "ann (to you): psst"
        a.send_text("@zed psst")
        assert a.receive_text() == "nobody called 'zed'"
        b.send_text("hello")
        assert a.receive_text() == "bob: hello"


@pytest.mark.parametrize("stem", ["manager_3_rooms", "manager_4_production"])
def test_steps_3_and_4_keep_messages_in_their_room(stem: str) -> None:
    paths = ["/ws/lobby?user=ann", "/ws/other?user=cat", "/ws/lobby?user=bob"]
    with TestClient(LESSON.app(stem)) as test_client, ExitStack() as stack:
        ann, cat, bob = (stack.enter_context(test_client.websocket_connect(p)) for p in paths)
        assert "ann" in ann.receive_text() and "cat" in cat.receive_text()  # own joins
        assert "bob" in ann.receive_text() and "bob" in bob.receive_text()
        ann.send_text("lobby only")
        assert "lobby only" in bob.receive_text()
        with test_client.websocket_connect("/ws/other?user=dan"):
            # cat's next message is dan joining: the lobby's message never reached it.
            assert "dan" in cat.receive_text()


def test_step_4_answers_a_binary_frame_with_an_error_event() -> None:
    with step_clients("manager_4_production", "/ws/lobby?user=ann") as (ann,):
        assert ann.receive_json()["type"] == "join"
        ann.send_bytes(b"\x00")
        assert ann.receive_json() == {"type": "error", "error": "send text frames"}


@pytest.mark.anyio
async def test_step_4_real_server_and_its_stats(serve) -> None:
    server = serve(LESSON.app("manager_4_production"))
    async with (
        LiveClient(server.ws_url("/ws/lobby?user=ann")) as ann,
        LiveClient(server.ws_url("/ws/lobby?user=bob")) as bob,
    ):
        await ann.receive_json(), await ann.receive_json(), await bob.receive_json()
        await bob.send("hi")
        assert (await ann.receive_json())["text"] == "hi"
        await bob.receive_nothing(within=0.2)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            got = (await http.get("/stats")).json()
        assert got == {"clients": 2, "rooms": {"lobby": 2}, "dropped": 0}


# The task board: REST changes pushed once committed.


def test_board_publishes_only_after_a_successful_change() -> None:
    with TestClient(LESSON.app("board")) as client, client.websocket_connect("/ws/tasks") as events:
        assert events.receive_json() == {"type": "tasks", "tasks": []}
        created = client.post("/tasks", json={"title": "write tests"})
        assert created.status_code == 201
        assert events.receive_json() == {"type": "task_created", "task": created.json()}
        assert client.post("/tasks", json={"title": "write tests"}).status_code == 409
        assert client.put("/tasks/99", json={"done": True}).status_code == 404
        assert client.post("/tasks", json={"title": ""}).status_code == 422
        assert client.put("/tasks/1", json={"done": "maybe"}).status_code == 422
        updated = client.put("/tasks/1", json={"done": True})
        # The next event is this update: none of the failed changes published anything.
        assert events.receive_json() == {"type": "task_updated", "task": updated.json()}
        assert updated.json() == {"id": 1, "title": "write tests", "done": True}
        events.send_text("hello?")
        assert events.receive_json() == {"type": "error", "error": "this endpoint only pushes"}
        with client.websocket_connect("/ws/tasks") as late:
            assert late.receive_json() == {"type": "tasks", "tasks": [updated.json()]}


@pytest.mark.anyio
async def test_real_board_over_http_and_websocket(serve: Callable[..., LiveServer]) -> None:
    live = serve(LESSON.app("board"))
    async with (
        LiveClient(live.ws_url("/ws/tasks")) as events,
        httpx.AsyncClient(base_url=live.http_url) as http,
    ):
        assert (await events.receive_json())["tasks"] == []
        assert (await http.post("/tasks", json={"title": "ship"})).status_code == 201
        assert (await events.receive_json())["type"] == "task_created"
        assert (await http.post("/tasks", json={"title": "ship"})).status_code == 409
        await events.receive_nothing(within=0.3)
        assert (await http.put("/tasks/1", json={"title": "ship it"})).status_code == 200
        assert (await events.receive_json())["task"]["title"] == "ship it"


# The dashboard: one push loop, alive exactly while someone watches.


def test_dashboard_loop_lives_exactly_while_someone_watches() -> None:
    dashboard = LESSON.module("dashboard")
    dashboard.INTERVAL = 0.05
    with TestClient(dashboard.app) as client:
        assert client.get("/stats").json() == {"push_loops": 0, "watchers": 0}
        with client.websocket_connect("/ws/dashboard") as one:
            assert one.receive_json()["tick"] == 1
            with client.websocket_connect("/ws/dashboard") as two:
                assert client.get("/stats").json() == {"push_loops": 1, "watchers": 2}
                assert min(two.receive_json()["tick"] for _ in range(3)) > 1  # joined the loop
        assert client.get("/stats").json()["push_loops"] == 0
        for _ in range(5):  # quick reconnects: each starts one fresh loop, never a second one
            with client.websocket_connect("/ws/dashboard") as again:
                assert again.receive_json()["tick"] == 1
                assert client.get("/stats").json()["push_loops"] == 1


def test_dashboard_loop_is_cancelled_at_shutdown() -> None:
    dashboard = LESSON.module("dashboard")
    with TestClient(dashboard.app) as client, client.websocket_connect("/ws/dashboard") as ws:
        ws.receive_json()
        task = dashboard.dashboard.task
        assert task is not None and not task.done()
    assert dashboard.dashboard.task is None and task.done()


@pytest.mark.anyio
async def test_real_dashboard_quick_reconnects_never_double_the_loop(
    serve: Callable[..., LiveServer],
) -> None:
    dashboard = LESSON.module("dashboard")
    dashboard.INTERVAL = 0.3
    live = serve(dashboard.app)
    for _ in range(3):
        async with LiveClient(live.ws_url("/ws/dashboard")) as watcher:
            assert (await watcher.receive_json())["tick"] == 1
    async with LiveClient(live.ws_url("/ws/dashboard")) as watcher:
        ticks = [(await watcher.receive_json())["tick"] for _ in range(3)]
    assert ticks == [1, 2, 3]  # one loop: no tick twice, none from an older loop


# The canvas: strokes to the others, a clear to everyone; the history is the exercise.


def test_canvas_passes_strokes_to_the_others_and_clears_for_everyone() -> None:
    stroke = {"type": "stroke", "points": [[1, 2], [30, 40]], "color": "#ff0000", "width": 4}
    with (
        TestClient(LESSON.app("canvas")) as client,
        client.websocket_connect("/ws/canvas") as ann,
        client.websocket_connect("/ws/canvas") as bob,
    ):
        ann.send_json(stroke)
        assert bob.receive_json() == stroke
        bob.send_json({"type": "stroke", "points": [[5000, 1]]})
        assert bob.receive_json() == {
            "type": "error",
            "error": "Input should be less than or equal to 4000",
        }
        bob.send_json({"type": "clear"})
        for ws in (ann, bob):  # ann's own stroke never came back to her
            assert ws.receive_json() == {"type": "clear"}


@pytest.mark.anyio
async def test_real_canvas_a_late_joiner_starts_blank(serve: Callable[..., LiveServer]) -> None:
    live = serve(LESSON.app("canvas"))
    async with LiveClient(live.ws_url("/ws/canvas")) as ann:
        await ann.send_json({"type": "stroke", "points": [[10, 10], [20, 25]]})
        await ann.receive_nothing(within=0.2)  # the drawer already has her stroke
        async with LiveClient(live.ws_url("/ws/canvas")) as late:
            await late.receive_nothing(within=0.2)  # no history: exercise 2 adds it


# wslab serve 03 --app NAME


def test_serve_refuses_an_app_the_lesson_does_not_have(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "03", "--app", "nope"]) == 2
    assert "lesson 03_manager has no app nope.py" in capsys.readouterr().err
