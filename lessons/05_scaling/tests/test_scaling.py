"""Lesson 05: the app in-process, then real processes fanning out over Redis."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lessons import find
from lessons.kit import LiveClient, LiveServer, SubprocessServer, eventually, stalled_client
from lessons.kit.cleanup import leaves_promptly
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import bind_socket
from lessons.kit.sockets import HAVE_SS, server_sockets

LESSON = find("05_scaling")
APP = LESSON.path / "app.py"


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``make_app(RATE=1, ...)``: a fresh app module, loaded with those environment variables."""

    def load(**env: object) -> ModuleType:
        for name, value in {"INSTANCE": "test", **env}.items():
            monkeypatch.setenv(name, str(value))
        return LESSON.module()

    return load


@pytest.fixture
def client(make_app: Callable[..., ModuleType]) -> Iterator[TestClient]:
    with TestClient(make_app().app) as test_client:
        yield test_client


def say(text: str) -> str:
    return json.dumps({"type": "say", "text": text})


# In-process tier: Starlette's TestClient, memory broker.


def test_page_reconnects_with_backoff_and_jitter(client: TestClient) -> None:
    assert client.get("/").text == (LESSON.path / "index.html").read_text(encoding="utf-8")
    script = client.get("/page.js").text
    assert "/ws" in script and "Math.random()" in script and "attempt = 0" in script


def test_welcome_then_own_message_comes_back_with_an_id(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(say("hello"))
        event = ws.receive_json()
    assert event == {"type": "message", "text": "hello", "instance": "test", "id": "0-1"}


def test_bad_input_gets_an_error_event_and_the_connection_stays(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        for bad in ["{not json", "[1]", '{"type": "say"}', '{"type": "shout", "text": "x"}']:
            ws.send_text(bad)
            assert ws.receive_json()["type"] == "error"
        ws.send_text(say("still here"))
        assert ws.receive_json()["text"] == "still here"


def test_replay_from_last_id(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ids = []
        for text in "abc":
            ws.send_text(say(text))
            ids.append(ws.receive_json()["id"])
    with client.websocket_connect(f"/ws?last_id={ids[0]}") as ws:
        ws.receive_json()
        assert [ws.receive_json()["text"] for _ in range(2)] == ["b", "c"]
    with client.websocket_connect("/ws?last_id=nonsense") as ws:
        ws.receive_json()
        assert ws.receive_json() == {"type": "error", "error": "bad last_id"}


@pytest.mark.parametrize(
    ("env", "message", "code"),
    [
        ({"MAX_MESSAGE_BYTES": 100}, say("x" * 200), 1009),
        ({"RATE": 1.0, "BURST": 3}, say("flood"), 1008),
    ],
)
def test_limits_close_the_connection(
    make_app: Callable[..., ModuleType], env: dict, message: str, code: int
) -> None:
    with TestClient(make_app(**env).app) as test_client:
        with test_client.websocket_connect("/ws") as ws:
            ws.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(10):
                    ws.send_text(message)
                    ws.receive_json()
    assert closed.value.code == code


def test_binary_frames_are_refused_with_1003(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1003


def test_stats_count_the_clients(client: TestClient) -> None:
    assert client.get("/stats").json()["clients"] == 0
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        assert client.get("/stats").json()["clients"] == 1


def test_unknown_broker_url_is_refused_clearly(make_app: Callable[..., ModuleType]) -> None:
    with pytest.raises(ValueError, match="BROKER_URL must be"):
        with TestClient(make_app(BROKER_URL="kafka://x").app):
            pass


def test_settings_come_from_the_environment(make_app: Callable[..., ModuleType]) -> None:
    module = make_app(BROKER_URL="redis://127.0.0.1:1/0", RATE="2.5")
    assert (module.BROKER_URL, module.RATE, module.BURST) == ("redis://127.0.0.1:1/0", 2.5, 40)


# Real tier: two uvicorn processes (P18).


def start_instances(serve_file, broker_url: str, count: int = 2) -> list[SubprocessServer]:
    return [
        serve_file(APP, env={"BROKER_URL": broker_url, "INSTANCE": f"i{n}"})
        for n in range(1, count + 1)
    ]


async def connected(url: str, name: str) -> LiveClient:
    client = await LiveClient(url, name=name).connect()
    assert (await client.receive_json())["type"] == "welcome"
    return client


@pytest.mark.anyio
async def test_redis_broker_reaches_the_clients_of_every_process(
    redis_url: str, serve_file
) -> None:
    """P18 fixed: a message sent on instance 1 reaches the clients of instance 2."""
    one, two = start_instances(serve_file, redis_url)
    alice = await connected(one.ws_url("/ws"), "alice")
    bob = await connected(two.ws_url("/ws"), "bob")
    try:
        await alice.send(say("hi from 1"))
        for client in (alice, bob):
            event = await client.receive_json()
            assert (event["text"], event["instance"]) == ("hi from 1", "i1")
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.anyio
async def test_the_lifespan_ends_when_redis_py_swallows_the_pumps_cancellation(
    make_app: Callable[..., ModuleType], redis_url: str
) -> None:
    """Stopped at once after starting: a cancellation that lands while redis-py connects can
    be swallowed, and a lifespan that cancelled its pump once, then waited, never ended
    (the process was SIGKILLed after its 10 s)."""
    module = make_app(BROKER_URL=redis_url)
    await leaves_promptly(lambda: module.lifespan(module.app))


@pytest.mark.anyio
async def test_memory_broker_misses_the_other_process(serve_file) -> None:
    """P18: with the in-memory broker each process is its own island."""
    one, two = start_instances(serve_file, "memory://")
    alice = await connected(one.ws_url("/ws"), "alice")
    bob = await connected(two.ws_url("/ws"), "bob")
    try:
        await alice.send(say("hi from 1"))
        assert (await alice.receive_json())["text"] == "hi from 1"
        await bob.receive_nothing(within=0.5)
    finally:
        await alice.close()
        await bob.close()


def test_redis_server_runner_starts_pings_and_stops() -> None:
    with RedisServer() as server:
        client = server.client()
        try:
            assert client.ping() and client.info("persistence")["aof_enabled"] == 0
            assert client.config_get("save") == {"save": ""}
        finally:
            client.close()
    assert not server.running


@pytest.mark.anyio
async def test_heartbeat_pings_then_drops_a_silent_client_without_a_close_frame(
    serve: Callable[..., LiveServer], make_app: Callable[..., ModuleType]
) -> None:
    """Pings every 0.05 s; silent for 0.55 s (interval + timeout: room for a busy machine
    to answer the first ping), the client is dropped with no close frame (P37's fix): 1006."""
    live = serve(make_app(HEARTBEAT_INTERVAL=0.05, HEARTBEAT_TIMEOUT=0.5).app)
    async with LiveClient(live.ws_url("/ws"), name="silent") as ws:
        assert (await ws.receive_json())["heartbeat"] == pytest.approx(0.55)
        assert (await ws.receive_json())["type"] == "ping"
        await ws.send('{"type": "pong"}')
        assert (await ws.receive_json())["type"] == "ping"
        assert await ws.wait_closed(timeout=3) == (1006, "")


@pytest.mark.anyio
async def test_a_stalled_client_is_dropped_and_its_socket_released_the_others_get_everything(
    serve: Callable[..., LiveServer], make_app: Callable[..., ModuleType]
) -> None:
    """P31 and P36 in app.py: the hub drops the client that stopped reading; its close frame
    cannot get out, and the kernel drops the connection (TCP_USER_TIMEOUT, here 1 s)."""
    env = {"RATE": 1e9, "BURST": 10**9, "QUEUE_SIZE": 50, "MAX_MESSAGE_BYTES": 2**20}
    live = serve(make_app(**env).app, sock=bind_socket(user_timeout=1.0))
    with stalled_client(live.ws_url("/ws")) as stalled:
        async with LiveClient(live.ws_url("/ws"), name="speaker", max_queue=None) as speaker:
            await speaker.receive_json()
            for n in range(400):  # 400 x 16 kB: more than the stalled client's buffers hold
                await speaker.connection.send(say(f"{n} " + "x" * 16_000))
                assert json.loads(await speaker.connection.recv())["text"].startswith(f"{n} ")
            async with httpx.AsyncClient(base_url=live.http_url) as http:
                stats = (await http.get("/stats")).json()
            if HAVE_SS:  # the stalled client's socket is gone from the server, unsent data too
                port = stalled.getsockname()[1]
                await eventually(
                    lambda: not [s for s in server_sockets(live.port) if s.peer_port == port]
                )
    assert stats["clients"] == 1 and stats["peak_queue"] <= 50
    assert stats["dropped"] == {"slow consumer: too many messages queued": 1}
