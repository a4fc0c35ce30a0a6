"""Lesson 02's app: handshake, timeline, parameters, close codes, push, shutdown; both tiers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import (
    LiveClient,
    LiveServer,
    eventually,
    handshake_status,
    server_log,
)
from lessons.kit.wire import TEXT, accept_key, raw_handshake

LESSON = find("02_lifecycle")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(LESSON.app()) as test_client:
        yield test_client


@pytest.fixture
def server(serve) -> LiveServer:
    return serve(LESSON.app())


def kinds(events: Iterable[dict], client_id: str) -> list[str]:
    return [e["event"] for e in events if e["client"] == client_id]


# In-process tier: Starlette's TestClient.


def test_the_page_and_its_script_are_the_files_beside_the_app(client: TestClient) -> None:
    page, script = client.get("/"), client.get("/page.js")
    assert page.text == (LESSON.path / "index.html").read_text(encoding="utf-8")
    assert '<script src="/page.js">' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/ws/${id}?name=${name}" in script.text


def test_the_timeline_keeps_the_latest_events_only() -> None:
    module = LESSON.module()  # a fresh copy of the app module: its own timeline
    for n in range(1005):
        module.record(f"c{n}", "connected")
    assert len(module.EVENTS) == 1000
    assert [module.EVENTS[0]["client"], module.EVENTS[-1]["client"]] == ["c5", "c1004"]


def test_welcome_echo_and_timeline(client: TestClient) -> None:
    with client.websocket_connect("/ws/ada?name=Ada") as ws:
        assert ws.receive_json() == {"type": "welcome", "client": "ada", "name": "Ada"}
        ws.send_text("hello")
        assert ws.receive_json() == {"type": "echo", "text": "hello"}
        ws.close(4000, "done")
    events = client.get("/events", params={"client": "ada"}).json()
    assert [e["event"] for e in events] == ["connected", "message", "disconnected"]
    assert events[-1] | {"t": 0} == {
        "t": 0,
        "client": "ada",
        "event": "disconnected",
        "code": 4000,
        "reason": "done",
    }


def test_invalid_parameters_get_a_422_denial_in_process(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/ws/Not Valid?name=Ada"):
            pass
    assert denied.value.status_code == 422
    assert denied.value.json()["detail"][0]["loc"] == ["path", "client_id"]
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/ws/ada"):
            pass
    assert denied.value.json()["detail"][0]["loc"] == ["query", "name"]


def test_notify_reaches_a_connected_client_and_404_otherwise(client: TestClient) -> None:
    assert client.post("/notify/ada", json={"text": "hi"}).status_code == 404
    with client.websocket_connect("/ws/ada?name=Ada") as ws:
        ws.receive_json()
        answer = client.post("/notify/ada", json={"text": "hi"})
        assert answer.json() == {"queued_for": "ada"}
        assert ws.receive_json() == {"type": "notification", "text": "hi"}
    assert client.post("/notify/ada", json={"text": "gone"}).status_code == 404
    assert client.post("/notify/ada", json={}).status_code == 422


@pytest.mark.parametrize(
    ("command", "code", "reason"),
    [
        ("/close 4001 go away", 4001, "go away"),
        ("/close 1000", 1000, ""),
        ("/close 1013 try again later", 1013, "try again later"),
    ],
)
def test_server_closes_on_request_in_process(
    client: TestClient, command: str, code: int, reason: str
) -> None:
    with client.websocket_connect("/ws/ada?name=Ada") as ws:
        ws.receive_json()
        ws.send_text(command)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (code, reason)


@pytest.mark.parametrize("command", ["/close 1006", "/close abc", "/close 999", "/close"])
def test_unsendable_close_codes_get_an_error_event(client: TestClient, command: str) -> None:
    with client.websocket_connect("/ws/ada?name=Ada") as ws:
        ws.receive_json()
        ws.send_text(command)
        assert ws.receive_json()["type"] == "error"
        ws.send_text("still open")
        assert ws.receive_json() == {"type": "echo", "text": "still open"}


def test_binary_is_refused_with_1003_and_duplicates_with_4009(client: TestClient) -> None:
    with client.websocket_connect("/ws/ada?name=Ada") as first:
        first.receive_json()
        with client.websocket_connect("/ws/ada?name=Other") as second:
            with pytest.raises(WebSocketDisconnect) as refused:
                second.receive_json()
        assert refused.value.code == 4009
        first.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            first.receive_json()
    assert closed.value.code == 1003


# Real tier: uvicorn on a loopback port, a `websockets` client.


@pytest.mark.anyio
async def test_handshake_is_an_http_upgrade_answered_with_101(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/ada?name=Ada")) as ws:
        request, response = ws.connection.request, ws.connection.response
    assert request.path == "/ws/ada?name=Ada"
    assert request.headers["Upgrade"] == "websocket"
    assert request.headers["Sec-WebSocket-Version"] == "13"
    assert response.status_code == 101
    assert response.headers["Upgrade"].lower() == "websocket"
    assert response.headers["Sec-WebSocket-Accept"] == accept_key(
        request.headers["Sec-WebSocket-Key"]
    )


@pytest.mark.anyio
@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "tab closed"), (4000, "done")])
async def test_the_server_records_the_client_close_code(
    server: LiveServer, code: int, reason: str
) -> None:
    events = server.app.state.events
    async with LiveClient(server.ws_url("/ws/ada?name=Ada")) as ws:
        await ws.receive_json()
        await ws.send("hi")
        await ws.receive_json()
        await ws.close(code, reason)
    await eventually(lambda: "disconnected" in kinds(events, "ada"))
    assert kinds(events, "ada") == ["connected", "message", "disconnected"]
    assert (events[-1]["code"], events[-1]["reason"]) == (code, reason)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, "bye"), (1008, "policy"), (1011, "internal error"), (1013, "later"), (4001, "kicked")],
)
async def test_the_client_sees_the_server_close_code(
    server: LiveServer, code: int, reason: str
) -> None:
    async with LiveClient(server.ws_url("/ws/ada?name=Ada")) as ws:
        await ws.receive_json()
        await ws.send(f"/close {code} {reason}")
        assert await ws.wait_closed() == (code, reason)


@pytest.mark.anyio
async def test_binary_gets_1003_and_a_duplicate_id_4009(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/ada?name=Ada")) as first:
        await first.receive_json()
        async with LiveClient(server.ws_url("/ws/ada?name=Bob")) as second:
            assert await second.wait_closed() == (4009, "client id 'ada' is already connected")
        await first.send(b"\x00")
        assert await first.wait_closed() == (1003, "this endpoint takes text messages only")


@pytest.mark.anyio
async def test_invalid_parameters_get_http_422_with_the_errors(server: LiveServer) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as rejected:
        async with LiveClient(server.ws_url("/ws/ada?name=")):
            pass
    assert rejected.value.response.status_code == 422
    assert b'"loc":["query","name"]' in rejected.value.response.body
    assert await handshake_status(server.ws_url("/ws/UPPER?name=x")) == 422
    assert await handshake_status(server.ws_url("/nowhere")) == 403


@pytest.mark.anyio
async def test_notify_pushes_while_the_reader_waits(server: LiveServer, http_call) -> None:
    url = server.http_url + "/notify/ada"
    assert (await http_call("POST", url, {"text": "x"}))[0] == 404
    async with LiveClient(server.ws_url("/ws/ada?name=Ada")) as ws:
        await ws.receive_json()
        assert await http_call("POST", url, {"text": "build done"}) == (200, {"queued_for": "ada"})
        assert await ws.receive_json() == {"type": "notification", "text": "build done"}
        await ws.send("and I can still talk")
        assert await ws.receive_json() == {"type": "echo", "text": "and I can still talk"}
    # the reader saw the close, the writer was cancelled with it: the client is gone
    await eventually(lambda: "ada" not in server.app.state.clients)
    assert (await http_call("POST", url, {"text": "x"}))[0] == 404


@pytest.mark.anyio
async def test_a_raw_handshake_shows_the_accept_key_and_the_first_frame(server: LiveServer) -> None:
    with raw_handshake(server.ws_url("/ws/raw?name=Raw")) as raw:
        assert raw.status == 101
        assert f"Sec-WebSocket-Accept: {accept_key(raw.key)}" in raw.response
        frame = raw.read_frame()
    assert frame.head.startswith("81 ")  # final fragment, text
    assert frame.payload == b'{"type":"welcome","client":"raw","name":"Raw"}'


@pytest.mark.anyio
async def test_a_text_frame_that_is_not_utf8_gets_1007(server: LiveServer) -> None:
    with server_log() as log, raw_handshake(server.ws_url("/ws/raw?name=Raw")) as raw:
        raw.send_frame(TEXT, "café".encode("latin-1"))
        assert raw.close_code() == 1007
    assert "Invalid UTF-8" in log


@pytest.mark.anyio
async def test_messages_over_the_size_limit_get_1009(serve) -> None:
    live = serve(LESSON.app(), ws_max_size=1024)
    async with LiveClient(live.ws_url("/ws/ada?name=Ada")) as ws:
        await ws.receive_json()
        await ws.send("x" * 2048)
        code, _ = await ws.wait_closed()
    assert code == 1009


@pytest.mark.anyio
async def test_graceful_stop_closes_with_1012_and_the_server_records_it() -> None:
    live = LiveServer(LESSON.app()).start()
    try:
        async with LiveClient(live.ws_url("/ws/ada?name=Ada")) as ws:
            await ws.receive_json()
            live.stop()
            code, reason = await ws.wait_closed()
            assert reason == ""
            CLAIMS["shutdown-close-code"].expect(f"{code} (service restart)")
    finally:
        live.stop()
    last = live.app.state.events[-1]
    assert (last["event"], last["code"]) == ("disconnected", 1012)


@pytest.mark.anyio
async def test_a_killed_server_leaves_the_client_with_1006(serve_file) -> None:
    process = serve_file(LESSON.app_path)
    async with LiveClient(process.ws_url("/ws/ada?name=Ada")) as ws:
        await ws.receive_json()
        process.kill()
        assert await ws.wait_closed() == (1006, "")
    assert process.process is not None and process.process.returncode == -9
