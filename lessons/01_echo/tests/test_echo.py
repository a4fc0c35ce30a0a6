"""Lesson 01: every endpoint and every pitfall, in-process and against a real uvicorn."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import LiveClient, LiveServer, handshake_status

LESSON = find("01_echo")
PERIOD = LESSON.module().PERIOD


def latest() -> int:
    """The number of the feed's newest message already due."""
    return int(time.time() / PERIOD)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(LESSON.app()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(LESSON.app()) as live:
        yield live


# In-process tier: Starlette's TestClient.


def test_the_page_and_its_script_are_the_files_beside_the_app(client: TestClient) -> None:
    page, script = client.get("/"), client.get("/page.js")
    assert page.text == (LESSON.path / "index.html").read_text(encoding="utf-8")
    assert page.headers["content-type"].startswith("text/html")
    assert script.text == (LESSON.path / "page.js").read_text(encoding="utf-8")
    assert "javascript" in script.headers["content-type"] and "/ws/echo" in script.text


def test_http_echo_is_the_same_exchange_as_one_request(client: TestClient) -> None:
    assert client.get("/http/echo", params={"text": "hi"}).json() == {"reply": "Echo: hi"}
    assert client.get("/http/echo").status_code == 422


def test_echo_prefixes_each_text_message(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        for text in ["hello", "", "ünïcödé ✓"]:
            ws.send_text(text)
            assert ws.receive_text() == f"Echo: {text}"


def test_json_endpoint_echoes_values_and_reports_invalid_json(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as ws:
        ws.send_json({"n": 1, "tags": ["a"]})
        assert ws.receive_json() == {"echo": {"n": 1, "tags": ["a"]}}
        ws.send_text("{not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_json([1, 2])
        assert ws.receive_json() == {"echo": [1, 2]}


def test_exact_echo_returns_text_and_bytes_unchanged(client: TestClient) -> None:
    with client.websocket_connect("/ws/exact") as ws:
        for text in ["hello", "", "ünïcödé ✓"]:
            ws.send_text(text)
            assert ws.receive() == {"type": "websocket.send", "text": text}
        for data in [b"\x89PNG\r\n", b"", bytes(range(256))]:
            ws.send_bytes(data)
            assert ws.receive() == {"type": "websocket.send", "bytes": data}


def test_feed_poll_returns_every_message_due_since_the_one_given(client: TestClient) -> None:
    newest = latest()
    polled = client.get("/feed/poll", params={"after": newest - 3}).json()
    assert [m["n"] for m in polled][:3] == [newest - 2, newest - 1, newest]
    assert all(m["due"] == round(m["n"] * PERIOD, 6) <= time.time() for m in polled)
    assert len(client.get("/feed/poll", params={"after": 0}).json()) == LESSON.module().MAX_COUNT


def test_feed_wait_answers_with_the_message_asked_for(client: TestClient) -> None:
    n = latest()
    assert client.get("/feed/wait", params={"n": n}).json() == {"n": n, "due": round(n * PERIOD, 6)}


@pytest.mark.parametrize("path", ["/feed/wait", "/sse/feed"])
def test_feed_refuses_a_message_too_far_in_the_future(client: TestClient, path: str) -> None:
    assert client.get(path, params={"n": latest() + 10**6}).status_code == 400


def test_feed_websocket_sends_each_message_then_closes(client: TestClient) -> None:
    n = latest() - 3
    with client.websocket_connect(f"/ws/feed?n={n}&count=3") as ws:
        assert [ws.receive_json()["n"] for _ in range(3)] == [n, n + 1, n + 2]
        assert ws.receive() == {
            "type": "websocket.close",
            "code": 1000,
            "reason": "that was the last one",
        }


def test_feed_events_are_one_data_line_per_message(client: TestClient) -> None:
    n = latest() - 2
    response = client.get("/sse/feed", params={"n": n, "count": 2})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == "".join(
        f'data: {{"n":{m},"due":{round(m * PERIOD, 6)}}}\n\n' for m in (n, n + 1)
    )


# Real tier: uvicorn on a loopback port, a `websockets` client.


@pytest.mark.anyio
async def test_real_page_and_http_echo(serve: Callable[..., LiveServer]) -> None:
    """Its own server: FileResponse reads the file in a worker thread that lives with it."""
    async with httpx.AsyncClient(base_url=serve(LESSON.app()).http_url) as http:
        page = await http.get("/")
        assert page.text == (LESSON.path / "index.html").read_text(encoding="utf-8")
        assert (await http.get("/http/echo", params={"text": "x"})).json() == {"reply": "Echo: x"}


@pytest.mark.anyio
async def test_real_feed_websocket_pushes_each_message_when_due(server: LiveServer) -> None:
    n = latest() + 3
    async with LiveClient(server.ws_url(f"/ws/feed?n={n}&count=3")) as ws:
        for expected in (n, n + 1, n + 2):
            message = await ws.receive_json()
            assert message["n"] == expected and time.time() >= message["due"]
        assert await ws.wait_closed() == (1000, "that was the last one")


@pytest.mark.anyio
async def test_real_feed_events_stream_each_message_when_due(server: LiveServer) -> None:
    n = latest() + 3
    async with (
        httpx.AsyncClient(base_url=server.http_url) as http,
        http.stream("GET", "/sse/feed", params={"n": n, "count": 2}) as response,
    ):
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
        arrived = time.time()
    assert [json.loads(line[5:])["n"] for line in lines] == [n, n + 1]
    assert arrived >= (n + 1) * PERIOD


@pytest.mark.anyio
async def test_real_feed_refuses_a_websocket_too_far_in_the_future(server: LiveServer) -> None:
    assert await handshake_status(server.ws_url(f"/ws/feed?n={latest() + 10**6}")) == 400


@pytest.mark.anyio
async def test_real_echo_round_trip(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/echo")) as ws:
        await ws.send("hello")
        assert await ws.receive() == "Echo: hello"
        await ws.receive_nothing(within=0.2)


@pytest.mark.anyio
async def test_real_exact_echo_returns_each_frame_as_it_came(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/exact")) as ws:
        for message in ["hello", b"\x00\xff binary", "", b"", "ünïcödé ✓", b"x" * 70_000]:
            await ws.send(message)
            assert await ws.receive() == message  # str stays str, bytes stay bytes
        await ws.close(1000)
        assert ws.close_code == 1000


@pytest.mark.anyio
async def test_the_command_line_client_of_websockets_talks_to_the_exact_echo(
    server: LiveServer,
) -> None:
    """``python -m websockets URL`` ships with websockets (seen on 17.4), as lesson 01 says."""
    command_line_client = LESSON.module("experiments").command_line_client
    printed = await command_line_client(server.ws_url("/ws/exact"), "hello", "ünïcödé ✓")
    assert printed.splitlines() == [
        f"Connected to {server.ws_url('/ws/exact')}.",
        "< hello",
        "< ünïcödé ✓",
        "Connection closed: 1000 (OK).",
    ]


@pytest.mark.anyio
async def test_real_json_echo_and_error_event(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/json")) as ws:
        await ws.send_json({"a": [1, None]})
        assert await ws.receive_json() == {"echo": {"a": [1, None]}}
        await ws.send("{oops")
        assert (await ws.receive_json())["type"] == "error"
        await ws.send("x" * 200_000)  # a large message is one more invalid JSON text
        assert (await ws.receive_json())["type"] == "error"


@pytest.mark.anyio
async def test_real_client_close_code_reaches_the_server_cleanly(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/echo")) as ws:
        await ws.close(4000, "bye")
        assert ws.close_code == 4000


@pytest.mark.anyio
async def test_unknown_websocket_path_is_refused_with_403(server: LiveServer) -> None:
    assert await handshake_status(server.ws_url("/ws/nowhere")) == 403


# Pitfalls: the broken file fails the way a client sees it; the fix does not.

BROKEN_INPUT = {
    "binary_frame": (b"\x89PNG", KeyError),
    "invalid_json": ("{'single': 'quotes'}", ValueError),
    "missing_field": ('{"txt": "typo"}', KeyError),
}


@pytest.mark.parametrize("pitfall", BROKEN_INPUT)
def test_pitfall_raises_in_the_handler(pitfall: str) -> None:
    bad, error = BROKEN_INPUT[pitfall]
    with TestClient(LESSON.app(f"pitfall_{pitfall}")) as test_client:
        with pytest.raises(error), test_client.websocket_connect("/ws") as ws:
            ws.send_bytes(bad) if isinstance(bad, bytes) else ws.send_text(bad)
            ws.receive()


@pytest.mark.anyio
@pytest.mark.parametrize("pitfall", BROKEN_INPUT)
async def test_pitfall_drops_the_connection_without_a_close_frame(
    pitfall: str, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's default (websockets-sansio) just closes TCP: the client sees 1006, not 1011."""
    bad, error = BROKEN_INPUT[pitfall]
    with (
        caplog.at_level(logging.ERROR, logger="uvicorn.error"),
        LiveServer(LESSON.app(f"pitfall_{pitfall}"), log_level="error") as live,
    ):
        async with LiveClient(live.ws_url("/ws")) as ws:
            await ws.send(bad)
            code, _ = await ws.wait_closed()
    CLAIMS["crash-close"].expect("no close frame: 1006" if code == 1006 else f"close frame {code}")
    crashes = [r for r in caplog.records if r.getMessage().startswith("Exception in ASGI")]
    assert crashes and crashes[0].exc_info and issubclass(crashes[0].exc_info[0], error)


@pytest.mark.anyio
async def test_fix_binary_frame_refuses_binary_with_1003(serve) -> None:
    live = serve(LESSON.app("fix_binary_frame"))
    async with LiveClient(live.ws_url("/ws")) as ws:
        await ws.send("fine")
        assert await ws.receive() == "Echo: fine"
        await ws.send(b"\x89PNG")
        code, reason = await ws.wait_closed()
    assert (code, reason) == (1003, "this endpoint takes text frames only")


def test_fix_binary_frame_in_process() -> None:
    with TestClient(LESSON.app("fix_binary_frame")) as test_client:
        with test_client.websocket_connect("/ws") as ws:
            ws.send_bytes(b"\x89PNG")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
    assert closed.value.code == 1003


@pytest.mark.anyio
@pytest.mark.parametrize("pitfall", ["invalid_json", "missing_field"])
async def test_fix_answers_bad_input_with_an_error_event_and_stays_open(
    pitfall: str, serve
) -> None:
    bad, _ = BROKEN_INPUT[pitfall]
    live = serve(LESSON.app(f"fix_{pitfall}"))
    async with LiveClient(live.ws_url("/ws")) as ws:
        await ws.send(bad)
        error = await ws.receive_json()
        assert error["type"] == "error" and error["error"]
        await ws.send_json({"text": "still here"})
        reply = await ws.receive_json()
        assert reply in ({"echo": {"text": "still here"}}, {"type": "said", "text": "still here"})


@pytest.mark.parametrize("pitfall", ["invalid_json", "missing_field"])
def test_fix_error_event_in_process(pitfall: str) -> None:
    bad, _ = BROKEN_INPUT[pitfall]
    with TestClient(LESSON.app(f"fix_{pitfall}")) as test_client:
        with test_client.websocket_connect("/ws") as ws:
            ws.send_text(bad)
            assert ws.receive_json()["type"] == "error"


def test_fix_missing_field_names_the_missing_field_and_survives_invalid_json() -> None:
    with TestClient(LESSON.app("fix_missing_field")) as test_client:
        with test_client.websocket_connect("/ws") as ws:
            ws.send_text('{"txt": "typo"}')
            [problem] = ws.receive_json()["error"]
            assert (problem["type"], problem["loc"]) == ("missing", ["text"])
            ws.send_text("{'single': 'quotes'}")
            assert ws.receive_json()["error"][0]["type"] == "json_invalid"
            ws.send_text('{"text": "hi"}')
            assert ws.receive_json() == {"type": "said", "text": "hi"}
