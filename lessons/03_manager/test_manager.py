"""Lesson 03's app: chat with rooms, tasks, dashboard, canvas, the Hub; and the manager steps."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lessons import find
from lessons.kit import LiveClient, LiveServer, handshake_status

LESSON = find("03_manager")


@pytest.fixture
def module() -> ModuleType:
    return LESSON.module()


@pytest.fixture
def client(module: ModuleType) -> Iterator[TestClient]:
    with TestClient(module.app) as test_client:
        yield test_client


def welcome(ws: Any) -> dict[str, Any]:
    event = ws.receive_json()
    assert event["type"] in {"welcome", "history", "tasks", "metrics"}
    return event


# In-process tier: Starlette's TestClient.


@pytest.mark.parametrize(
    ("path", "socket"),
    [
        ("/", "/ws/chat/"),
        ("/canvas", "/ws/canvas"),
        ("/dashboard", "/ws/dashboard"),
        ("/board", "/ws/tasks"),
    ],
)
def test_each_page_opens_its_websocket(client: TestClient, path: str, socket: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and socket in page.text


def test_chat_join_message_whisper_and_leave(client: TestClient) -> None:
    with client.websocket_connect("/ws/chat/lobby?user=ann") as ann:
        assert welcome(ann)["members"] == ["ann"]
        with client.websocket_connect("/ws/chat/lobby?user=bob") as bob:
            assert welcome(bob)["members"] == ["ann", "bob"]
            joined = ann.receive_json()
            assert (joined["type"], joined["user"], joined["members"]) == ("join", "bob", 2)
            ann.send_json({"type": "message", "text": "hi"})
            said = bob.receive_json()
            assert {k: said[k] for k in ("type", "room", "user", "text")} == {
                "type": "message",
                "room": "lobby",
                "user": "ann",
                "text": "hi",
            }
            assert isinstance(said["ts"], float)
            bob.send_json({"type": "whisper", "to": "ann", "text": "psst"})
            assert ann.receive_json()["type"] == "whisper"  # ann's own "hi" never came back
        left = ann.receive_json()
        assert (left["type"], left["user"], left["members"]) == ("leave", "bob", 1)


def test_chat_rooms_are_separate(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws/chat/lobby?user=ann") as ann,
        client.websocket_connect("/ws/chat/other?user=cat") as cat,
    ):
        welcome(ann), welcome(cat)
        ann.send_json({"type": "message", "text": "lobby only"})
        cat.send_json({"type": "whisper", "to": "ann", "text": "are you there?"})
        # The first thing cat gets is the answer to its own whisper: nothing from the lobby.
        assert cat.receive_json() == {"type": "error", "error": "nobody called 'ann'"}


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("{not json", "Invalid JSON"),
        ('{"type": "message"}', "message.text: Field required"),
        ('{"type": "message", "text": ""}', "at least 1 character"),
        ('{"type": "message", "text": "hi", "user": "eve"}', "Extra inputs are not permitted"),
        ('{"type": "shout", "text": "hi"}', "does not match any of the expected tags"),
        ('{"type": "whisper", "to": "no one", "text": "x"}', "should match pattern"),
        (b"\x00binary", "send JSON text frames, not binary"),
    ],
)
def test_chat_bad_input_gets_an_error_event(
    client: TestClient, bad: str | bytes, error: str
) -> None:
    with client.websocket_connect("/ws/chat/lobby?user=ann") as ann:
        welcome(ann)
        ann.send_bytes(bad) if isinstance(bad, bytes) else ann.send_text(bad)
        event = ann.receive_json()
        assert event["type"] == "error" and error in event["error"], event
        ann.send_json({"type": "whisper", "to": "ann", "text": "still here"})
        assert ann.receive_json()["text"] == "still here"


@pytest.mark.parametrize("path", ["/ws/chat/lobby?user=", "/ws/chat/lobby", "/ws/chat/a b?user=x"])
def test_chat_refuses_a_bad_name_before_accepting(client: TestClient, path: str) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path):
        pass
    assert refused.value.code == 1008


def test_tasks_are_published_only_after_a_successful_change(client: TestClient) -> None:
    with client.websocket_connect("/ws/tasks") as events:
        assert welcome(events)["tasks"] == []
        created = client.post("/tasks", json={"title": "write tests"})
        assert created.status_code == 201
        event = events.receive_json()
        assert (event["type"], event["task"]) == ("task_created", created.json())
        assert client.post("/tasks", json={"title": "write tests"}).status_code == 409
        assert client.put("/tasks/99", json={"done": True}).status_code == 404
        assert client.post("/tasks", json={"title": ""}).status_code == 422
        assert client.put("/tasks/1", json={"done": "maybe"}).status_code == 422
        updated = client.put("/tasks/1", json={"done": True})
        # The next event is this update: none of the failed changes published anything.
        event = events.receive_json()
        assert (event["type"], event["task"]) == ("task_updated", updated.json())
        assert updated.json() == {"id": 1, "title": "write tests", "done": True}
    assert client.get("/tasks").json() == [updated.json()]
    with client.websocket_connect("/ws/tasks") as late:
        assert welcome(late)["tasks"] == [updated.json()]
        late.send_text("hello?")
        assert late.receive_json() == {"type": "error", "error": "this endpoint only pushes events"}


def test_dashboard_loop_lives_exactly_while_someone_watches(
    module: ModuleType, client: TestClient
) -> None:
    module.dashboard.interval = 0.05
    assert client.get("/stats").json()["push_loops"] == 0
    with client.websocket_connect("/ws/dashboard") as one:
        first = welcome(one)
        assert first["type"] == "metrics" and first["tick"] == 1
        with client.websocket_connect("/ws/dashboard") as two:
            assert client.get("/stats").json()["push_loops"] == 1
            ticks = {two.receive_json()["tick"] for _ in range(3)}
            assert min(ticks) > 1  # the second watcher joined the running loop
    assert client.get("/stats").json()["push_loops"] == 0
    for _ in range(5):  # quick reconnects: each starts one fresh loop, never a second one
        with client.websocket_connect("/ws/dashboard") as again:
            assert welcome(again)["tick"] == 1
            assert client.get("/stats").json()["push_loops"] == 1


def test_dashboard_loop_is_cancelled_at_shutdown(module: ModuleType) -> None:
    with TestClient(module.app) as test_client:
        with test_client.websocket_connect("/ws/dashboard") as watcher:
            welcome(watcher)
            task = module.dashboard.task
            assert task is not None and not task.done()
    assert module.dashboard.task is None and task.done()


def test_canvas_replays_history_and_clears_for_everyone(client: TestClient) -> None:
    stroke = {"type": "stroke", "points": [[1, 2], [30, 40]], "color": "#ff0000", "width": 4}
    with client.websocket_connect("/ws/canvas?user=ann") as ann:
        assert welcome(ann)["strokes"] == []
        with client.websocket_connect("/ws/canvas?user=bob") as bob:
            welcome(bob)
            ann.send_json(stroke)
            got = bob.receive_json()
            assert got["user"] == "ann" and got["points"] == [[1, 2], [30, 40]]
            with client.websocket_connect("/ws/canvas?user=cat") as cat:
                history = welcome(cat)["strokes"]
                assert [s["color"] for s in history] == ["#ff0000"]
                cat.send_json({"type": "stroke", "points": [[5000, 1]]})
                assert "less than or equal to 4000" in cat.receive_json()["error"]
                cat.send_json({"type": "clear"})
                for ws in (ann, bob, cat):  # ann's own stroke never came back to her
                    assert ws.receive_json()["type"] == "clear"
    assert client.get("/stats").json()["strokes"] == 0


def test_production_hub_is_the_same_code_in_app_and_step_4() -> None:
    def section(name: str) -> str:
        text = (LESSON.path / name).read_text()
        return text[text.index("# --- The production manager") : text.index("# --- End of")]

    assert section("app.py") == section("manager_4_production.py")


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
async def test_step_4_real_server_and_its_stats() -> None:
    with LiveServer(LESSON.app("manager_4_production")) as server:
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


# Real tier: uvicorn on a loopback port.


@pytest.fixture
def live(module: ModuleType) -> Iterator[LiveServer]:
    with LiveServer(module.app) as server:
        yield server


@pytest.mark.anyio
async def test_real_chat_rooms(live: LiveServer) -> None:
    async with (
        LiveClient(live.ws_url("/ws/chat/lobby?user=ann")) as ann,
        LiveClient(live.ws_url("/ws/chat/lobby?user=bob")) as bob,
        LiveClient(live.ws_url("/ws/chat/other?user=cat")) as cat,
    ):
        for ws in (ann, bob, cat):
            assert (await ws.receive_json())["type"] == "welcome"
        assert (await ann.receive_json())["members"] == 2
        await bob.send_json({"type": "message", "text": "hi ann"})
        assert (await ann.receive_json())["text"] == "hi ann"
        await bob.receive_nothing(within=0.2)
        await cat.receive_nothing(within=0.2)


@pytest.mark.anyio
async def test_real_chat_refuses_a_bad_name_with_403(live: LiveServer) -> None:
    assert await handshake_status(live.ws_url("/ws/chat/lobby?user=no%20spaces")) == 403
    assert await handshake_status(live.ws_url("/ws/chat/lobby")) == 403


@pytest.mark.anyio
async def test_real_task_board_over_http_and_websocket(live: LiveServer) -> None:
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


@pytest.mark.anyio
async def test_real_canvas_history_and_strokes(live: LiveServer) -> None:
    stroke = {"type": "stroke", "points": [[10, 10], [20, 25]]}
    async with LiveClient(live.ws_url("/ws/canvas?user=ann")) as ann:
        await ann.receive_json()
        await ann.send_json(stroke)
        await ann.receive_nothing(within=0.2)  # the drawer already has her stroke
        async with LiveClient(live.ws_url("/ws/canvas?user=bob")) as bob:
            history = (await bob.receive_json())["strokes"]
            assert [s["points"] for s in history] == [[[10, 10], [20, 25]]]


@pytest.mark.anyio
async def test_real_dashboard_quick_reconnects_never_double_the_loop(
    module: ModuleType, live: LiveServer
) -> None:
    module.dashboard.interval = 0.3
    for _ in range(3):
        async with LiveClient(live.ws_url("/ws/dashboard")) as watcher:
            assert (await watcher.receive_json())["tick"] == 1
    async with LiveClient(live.ws_url("/ws/dashboard")) as watcher:
        ticks = [(await watcher.receive_json())["tick"] for _ in range(3)]
    assert ticks == [1, 2, 3]  # one loop: no tick twice, none from an older loop


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
    module.hub.queue_size, module.hub.close_timeout = 32, 0.3
    url = live.ws_url("/ws/chat/lobby?user=")
    async with (
        LiveClient(url + "slow", compression=None) as slow,
        LiveClient(url + "ok") as ok,
        LiveClient(url + "pen") as pen,
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
        assert stats["dropped"] == 1 and stats["rooms"] == {"chat:lobby": 2}
        slow.connection.transport.abort()


@pytest.mark.anyio
async def test_real_slow_client_that_reads_again_sees_close_1013(
    module: ModuleType, live: LiveServer
) -> None:
    module.hub.queue_size, module.hub.close_timeout = 32, 10
    module.dashboard.interval = 0.05
    async with (
        LiveClient(live.ws_url("/ws/canvas?user=slow"), compression=None) as slow,
        LiveClient(live.ws_url("/ws/canvas?user=pen")) as pen,
        # max_queue=None: unread metrics must not pause this client's reading (and its close).
        LiveClient(live.ws_url("/ws/dashboard"), max_queue=None) as dashboard,
    ):
        await slow.receive_json()
        await pen.receive_json()
        slow.connection.transport.pause_reading()
        points = [[int(b) * 15, int(b) * 15] for b in os.urandom(1000)]
        for _ in range(800):  # about 8 MB: more than the slow client's buffers and queue hold
            await pen.send_json({"type": "stroke", "points": points})
        async with asyncio.timeout(10):
            while not (await dashboard.receive_json())["dropped"]:
                pass
        slow.connection.transport.resume_reading()  # within the close deadline
        assert await slow.wait_closed() == (1013, "slow consumer: too far behind")


# The benchmark app the notebook measures.


@pytest.mark.parametrize("strategy", ["naive", "gather", "queue"])
def test_bench_strategies_deliver_every_message_in_order(strategy: str) -> None:
    with TestClient(LESSON.app("bench_broadcast")) as client, ExitStack() as stack:
        sockets = [stack.enter_context(client.websocket_connect("/ws")) for _ in range(3)]
        result = client.post("/run", params={"strategy": strategy, "count": 5}).json()
        assert (result["sent"], result["subscribers"], result["dropped"]) == (5, 3, 0)
        for ws in sockets:
            assert [ws.receive_json()["i"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert client.post("/run", params={"strategy": "nope"}).status_code == 422


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["naive", "gather", "queue"])
async def test_bench_one_stalled_client(strategy: str) -> None:
    """The claim the notebook plots: naive and gather stop; the queue delivers everything."""
    with LiveServer(LESSON.app("bench_broadcast")) as server:
        async with (
            LiveClient(server.ws_url("/ws"), compression=None) as healthy,
            LiveClient(server.ws_url("/ws?stall=1"), compression=None, max_queue=None) as stalled,
            httpx.AsyncClient(base_url=server.http_url, timeout=10) as http,
        ):
            stalled.connection.transport.pause_reading()
            params = {"strategy": strategy, "count": 100, "deadline": 1.0}
            result = (await http.post("/run", params=params)).json()
            assert 2_000_000 < result["filled"] < 16_000_000  # the buffers held a few MB
            if strategy == "queue":
                assert (result["sent"], result["dropped"]) == (100, 1)
                assert [(await healthy.receive_json())["i"] for _ in range(100)] == [*range(100)]
            else:
                assert result["sent"] == 0  # stuck on the stalled client's first send
                assert (await healthy.receive_json())["i"] == 0
                await healthy.receive_nothing(within=0.3)
            stalled.connection.transport.abort()
