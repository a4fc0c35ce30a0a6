"""Lesson 02's pitfalls: each broken file fails the way a client or the log shows it; each
fix does not. P04, P05, P06, P07, P08 (receive-only and send-only), P09, P33, P34."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time

import pytest
from fastapi import FastAPI, HTTPException, WebSocket
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import (
    LiveClient,
    LiveServer,
    SubprocessServer,
    eventually,
    handshake_status,
    scaled,
)
from lessons.kit.probes import denial_log

LESSON = find("02_lifecycle")
EXPERIMENTS = LESSON.module("experiments")
handshake_answer, in_process_answer = EXPERIMENTS.handshake_answer, EXPERIMENTS.in_process_answer


def path(stem: str) -> str:
    return str(LESSON.file(stem))


def crashes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("Exception in ASGI")]


# P04: no disconnect handling.


@pytest.mark.anyio
async def test_p04_broken_logs_a_traceback_per_disconnect_and_never_cleans_up(
    http_call, serve_file
) -> None:
    server = serve_file(path("pitfall_no_disconnect"))
    async with LiveClient(server.ws_url("/ws/ada")) as ws:
        await ws.send("hi")
        assert await ws.receive() == "Echo: hi"
        await ws.close(1001, "bye")
    server.wait_for_output(r"Exception in ASGI application")
    server.wait_for_output(r"WebSocketDisconnect: \(1001, 'bye'\)")
    assert await http_call("GET", server.http_url + "/connected") == (200, ["ada"])


def test_p04_broken_in_process_the_disconnect_reaches_the_test() -> None:
    module = LESSON.module("pitfall_no_disconnect")
    with TestClient(module.app) as client:
        with pytest.raises(WebSocketDisconnect) as raised:
            with client.websocket_connect("/ws/ada") as ws:
                ws.send_text("hi")
                ws.receive_text()
        assert raised.value.code == 1000
        assert client.get("/connected").json() == ["ada"]


@pytest.mark.anyio
async def test_p04_fixed_cleans_up_quietly(caplog: pytest.LogCaptureFixture, http_call) -> None:
    module = LESSON.module("fix_no_disconnect")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"), LiveServer(module.app) as live:
        async with LiveClient(live.ws_url("/ws/ada")) as ws:
            await ws.send("hi")
            assert await ws.receive() == "Echo: hi"
        await eventually(lambda: not module.CONNECTED)
        assert await http_call("GET", live.http_url + "/connected") == (200, [])
    assert not crashes(caplog)


def test_p04_fixed_in_process() -> None:
    with TestClient(LESSON.app("fix_no_disconnect")) as client:
        with client.websocket_connect("/ws/ada") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "Echo: hi"
        assert client.get("/connected").json() == []


# P05: a bare except inside the loop.


@pytest.mark.anyio
async def test_p05_broken_hides_errors_then_freezes_the_server(serve_file) -> None:
    server = serve_file(path("pitfall_bare_except"))
    async with LiveClient(server.ws_url("/ws"), name="other") as other:
        # the frozen server never answers the leaver's close frame: do not wait 10 s
        leaving = LiveClient(server.ws_url("/ws"), name="leaver", close_timeout=0.5)
        async with leaving as leaver:
            await leaver.send("abc")
            await leaver.receive_nothing(within=0.5)  # the ValueError vanished
            await other.send("21")
            assert await other.receive() == "42"
        # the leaver is gone: its handler now spins without awaiting
        await other.send("21")
        await other.receive_nothing(within=1.0)
        returncode = server.stop(timeout=2)  # SIGTERM is not enough: SIGKILL after 2 s
    assert returncode == -signal.SIGKILL
    assert "Traceback" not in server.output


@pytest.mark.anyio
async def test_p05_fixed_reports_bad_input_and_ends_on_disconnect(serve_file) -> None:
    server = serve_file(path("fix_bare_except"))
    async with LiveClient(server.ws_url("/ws"), name="other") as other:
        async with LiveClient(server.ws_url("/ws"), name="leaver") as leaver:
            await leaver.send("abc")
            assert await leaver.receive() == "error: not an integer"
        await other.send("21")
        assert await other.receive(timeout=1.0) == "42"
    returncode = server.stop(timeout=5)
    assert returncode != -signal.SIGKILL


def test_p05_fixed_in_process() -> None:
    with TestClient(LESSON.app("fix_bare_except")) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_text("x")
            assert ws.receive_text() == "error: not an integer"
            ws.send_text("-4")
            assert ws.receive_text() == "-8"


@pytest.mark.anyio
async def test_p05_a_bare_except_swallows_cancellation() -> None:
    """The same ``except:`` in any task: ``cancel()`` is caught and the task carries on."""

    async def stubborn() -> int:
        swallowed = 0
        while swallowed < 2:
            try:
                await asyncio.sleep(10)
            except:  # noqa: E722
                swallowed += 1
        return swallowed

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start sleeping
    task.cancel()
    await asyncio.sleep(0)  # it catches the cancellation and sleeps again
    assert not task.done()
    task.cancel()
    async with asyncio.timeout(scaled(2)):
        assert await task == 2  # cancelled twice, finished normally


# P06: close() after the client left.


async def leave_during_the_ticks(url: str) -> None:
    async with LiveClient(url) as ws:
        await ws.send("100")
        assert await ws.receive_json() == {"tick": 1}


@pytest.mark.anyio
async def test_p06_broken_close_after_a_failed_send_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = LESSON.app("pitfall_close_after_leave")
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"), LiveServer(app) as live:
        await leave_during_the_ticks(live.ws_url("/ws/ticker"))
    [crash] = crashes(caplog)  # stopping the server waited for the handler to end
    assert crash.exc_info is not None
    kind = crash.exc_info[0]
    seen = f"{kind.__name__}, a RuntimeError" if issubclass(kind, RuntimeError) else kind.__name__
    CLAIMS["send-after-close"].expect(seen)
    assert 'Cannot call "send" once a close message has been sent' in str(crash.exc_info[1])


@pytest.mark.anyio
@pytest.mark.parametrize("stem", ["pitfall_close_after_leave", "fix_close_after_leave"])
async def test_p06_close_after_a_disconnect_that_receive_reported_is_silent(
    caplog: pytest.LogCaptureFixture, stem: str
) -> None:
    """The receive-side half: even the broken handler's close() is accepted quietly."""
    with caplog.at_level(logging.WARNING), LiveServer(LESSON.app(stem)) as live:
        async with LiveClient(live.ws_url("/ws/ticker")) as ws:
            await ws.receive_nothing(within=0.1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.anyio
async def test_p06_fixed_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    app = LESSON.app("fix_close_after_leave")
    with caplog.at_level(logging.ERROR, logger="uvicorn.error"), LiveServer(app) as live:
        await leave_during_the_ticks(live.ws_url("/ws/ticker"))
    assert not crashes(caplog)


@pytest.mark.parametrize("stem", ["pitfall_close_after_leave", "fix_close_after_leave"])
def test_p06_ticker_in_process(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client, client.websocket_connect("/ws/ticker") as ws:
        ws.send_text("3")
        assert [ws.receive_json()["tick"] for _ in range(3)] == [1, 2, 3]


# P07: blocking the event loop.


async def echo_delay_during_report(server: LiveServer) -> float:
    """Seconds an unrelated client's echo takes while a report runs."""
    async with (
        LiveClient(server.ws_url("/ws/echo"), name="other") as other,
        LiveClient(server.ws_url("/ws/report"), name="reporter") as reporter,
    ):
        await reporter.send("go")
        assert await reporter.receive() == "report started"
        started = time.perf_counter()
        await other.send("ping")
        assert await other.receive(timeout=5) == "ping"
        delay = time.perf_counter() - started
        assert (await reporter.receive(timeout=5)).startswith("report ready")
    return delay


@pytest.mark.anyio
async def test_p07_blocking_call_stalls_an_unrelated_client(serve) -> None:
    module = LESSON.module("pitfall_blocking")
    module.REPORT_SECONDS = 0.5  # longer than the file's, for a margin on a busy CI
    server = serve(module.app)
    assert await echo_delay_during_report(server) >= 0.35  # the report blocks 0.5 s


@pytest.mark.anyio
async def test_p07_fixed_the_unrelated_client_answers_at_once(serve) -> None:
    module = LESSON.module("fix_blocking")
    module.REPORT_SECONDS = 0.5  # as in the broken test: blocked, the echo would take 0.5 s
    server = serve(module.app)
    assert await echo_delay_during_report(server) < 0.3  # milliseconds, with room for a busy CI


def create_task_app() -> FastAPI:
    """The advice "use asyncio.create_task for independent work", on a blocking job."""
    app = FastAPI()

    async def job() -> None:
        time.sleep(0.5)  # noqa: ASYNC251  a task runs on the same event loop

    @app.websocket("/ws/report")
    async def report(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        websocket.state.job = asyncio.create_task(job())
        await websocket.send_text("report started")
        await websocket.receive()  # until the client leaves

    @app.websocket("/ws/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.receive()  # until the client leaves

    return app


@pytest.mark.anyio
async def test_p07_create_task_does_not_unblock_a_blocking_call(serve) -> None:
    live = serve(create_task_app())
    async with (
        LiveClient(live.ws_url("/ws/echo")) as other,
        LiveClient(live.ws_url("/ws/report")) as reporter,
    ):
        await reporter.send("go")
        assert await reporter.receive() == "report started"
        started = time.perf_counter()
        await other.send("ping")
        assert await other.receive(timeout=5) == "ping"
        assert time.perf_counter() - started >= 0.3  # the job blocks 0.5 s


@pytest.mark.parametrize("stem", ["pitfall_blocking", "fix_blocking"])
def test_p07_report_in_process(stem: str) -> None:
    module = LESSON.module(stem)
    module.REPORT_SECONDS = 0.01
    with TestClient(module.app) as client, client.websocket_connect("/ws/report") as ws:
        ws.send_text("go")
        assert ws.receive_text() == "report started"
        assert ws.receive_text() == "report ready after 0.01s"


# P08: a receive-only loop.


async def push_while_quiet(live: LiveServer, http_call) -> tuple[list, list]:
    """Messages within 0.3 s of a push, then within 0.3 s of the client's own ``hi``."""
    async with LiveClient(live.ws_url("/ws/ada")) as ws:
        pushed = await http_call("POST", live.http_url + "/notify/ada?text=ping")
        assert pushed == (200, {"queued_for": "ada"})
        quiet = await EXPERIMENTS.received_within(ws, 0.3)
        await ws.send("hi")
        return quiet, await EXPERIMENTS.received_within(ws, 0.3)


@pytest.mark.anyio
async def test_p08_broken_a_receive_only_loop_pushes_only_when_the_client_speaks(
    serve, http_call
) -> None:
    live = serve(LESSON.app("pitfall_receive_only"))
    assert await push_while_quiet(live, http_call) == ([], ["echo: hi", "ping"])


@pytest.mark.anyio
async def test_p08_fixed_the_writer_task_pushes_at_once(serve, http_call) -> None:
    live = serve(LESSON.app("fix_receive_only"))
    assert await push_while_quiet(live, http_call) == (["ping"], ["echo: hi"])


@pytest.mark.parametrize("stem", ["pitfall_receive_only", "fix_receive_only"])
def test_p08_receive_only_in_process(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client:
        with client.websocket_connect("/ws/ada") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo: hi"
        assert client.post("/notify/ada", params={"text": "hi"}).status_code == 404


# P08: a send-only loop.


@pytest.mark.anyio
async def test_p08_broken_keeps_a_departed_client(serve, http_call) -> None:
    module = LESSON.module("pitfall_send_only")
    live = serve(module.app)
    async with LiveClient(live.ws_url("/ws/ada")):
        await eventually(lambda: "ada" in module.CLIENTS)
    await asyncio.sleep(0.5)  # a departure nothing notices: still listed half a second later
    assert "ada" in module.CLIENTS
    notify = live.http_url + "/notify/ada?text=hello"
    assert await http_call("POST", notify) == (200, {"queued_for": "ada"})  # a lie
    await eventually(lambda: "ada" not in module.CLIENTS)  # the failed send ended it
    assert (await http_call("POST", notify))[0] == 404


@pytest.mark.anyio
async def test_p08_fixed_notices_the_departure_at_once(serve, http_call) -> None:
    module = LESSON.module("fix_send_only")
    live = serve(module.app)
    notify = live.http_url + "/notify/ada?text=hello"
    async with LiveClient(live.ws_url("/ws/ada")) as ws:
        await eventually(lambda: "ada" in module.CLIENTS)
        assert (await http_call("POST", notify))[0] == 200
        assert await ws.receive() == "hello"
    await eventually(lambda: "ada" not in module.CLIENTS, timeout=1.0)
    assert (await http_call("POST", notify))[0] == 404


@pytest.mark.parametrize("stem", ["pitfall_send_only", "fix_send_only"])
def test_p08_in_process_testclient_hides_the_leak(stem: str) -> None:
    """TestClient cancels the handler when the ``with`` block ends: no leak is visible."""
    module = LESSON.module(stem)
    with TestClient(module.app) as client:
        with client.websocket_connect("/ws/ada") as ws:
            assert client.post("/notify/ada", params={"text": "hi"}).status_code == 200
            assert ws.receive_text() == "hi"
        assert module.CLIENTS == {}
        assert client.post("/notify/ada", params={"text": "hi"}).status_code == 404


# P09: rejecting before accept.


@pytest.mark.anyio
async def test_p09_broken_real_client_gets_a_bare_403(serve) -> None:
    live = serve(LESSON.app("pitfall_reject"))
    with pytest.raises(InvalidStatus) as rejected:
        async with LiveClient(live.ws_url("/ws/rooms/attic?name=ada")):
            pass
    assert rejected.value.response.status_code == 403
    assert rejected.value.response.body == b""
    assert await handshake_status(live.ws_url("/ws/rooms/lobby")) == 403  # no name
    assert await handshake_status(live.ws_url("/ws/rooms/lobby?name=ada")) == 101


def test_p09_broken_in_process_reports_close_1008() -> None:
    with TestClient(LESSON.app("pitfall_reject")) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws/rooms/attic?name=ada"):
                pass
        assert (closed.value.code, closed.value.reason) == (1008, "no room 'attic'")
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws/rooms/lobby"):
                pass
        assert closed.value.code == 1008


@pytest.mark.anyio
async def test_p09_closing_before_accept_by_version() -> None:
    broken, where = LESSON.app("pitfall_reject"), "/ws/rooms/attic?name=ada"
    in_process = in_process_answer(broken, where)
    code = "1008" if in_process.startswith("a close with code 1008") else in_process
    CLAIMS["close-before-accept-in-process"].expect(f"a close with the app's code ({code})")
    CLAIMS["close-before-accept-on-the-wire"].expect(await handshake_answer(broken, where))


@pytest.mark.anyio
async def test_p09_fixed_real_client_gets_404_and_422_with_a_body(serve) -> None:
    live = serve(LESSON.app("fix_reject"), log_level="critical")
    with pytest.raises(InvalidStatus) as rejected:
        async with LiveClient(live.ws_url("/ws/rooms/attic?name=ada")):
            pass
    assert rejected.value.response.status_code == 404
    assert rejected.value.response.body == b'{"detail":"no room \'attic\'"}'
    assert await handshake_status(live.ws_url("/ws/rooms/lobby")) == 422
    async with LiveClient(live.ws_url("/ws/rooms/lobby?name=ada")) as ws:
        assert await ws.receive() == "ada joined lobby"


@pytest.mark.anyio
async def test_p09_what_uvicorn_logs_after_the_denial_depends_on_its_version() -> None:
    """The notebook's note on denial responses: an ERROR up to uvicorn 0.54, nothing on 0.55."""
    app = LESSON.app("fix_reject")
    CLAIMS["denial-response-log"].expect(await denial_log(app, "/ws/rooms/attic?name=ada"))


def test_p09_fixed_in_process_reports_the_denial() -> None:
    with TestClient(LESSON.app("fix_reject")) as client:
        with pytest.raises(WebSocketDenialResponse) as denied:
            with client.websocket_connect("/ws/rooms/attic?name=ada"):
                pass
        assert denied.value.status_code == 404
        assert denied.value.json() == {"detail": "no room 'attic'"}
        with client.websocket_connect("/ws/rooms/kitchen?name=ada") as ws:
            assert ws.receive_text() == "ada joined kitchen"


def http_exception_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def guarded(websocket: WebSocket) -> None:
        raise HTTPException(401, "who are you?")

    return app


@pytest.mark.anyio
async def test_p09_raising_httpexception_before_accept_is_a_denial_too(serve) -> None:
    live = serve(http_exception_app(), log_level="critical")
    with pytest.raises(InvalidStatus) as rejected:
        async with LiveClient(live.ws_url("/ws")):
            pass
    assert rejected.value.response.status_code == 401
    assert rejected.value.response.body == b'{"detail":"who are you?"}'
    with TestClient(http_exception_app()) as client:
        with pytest.raises(WebSocketDenialResponse) as denied:
            with client.websocket_connect("/ws"):
                pass
    assert denied.value.status_code == 401


# P33: shutdown with a stalled client.


async def sigterm_with_a_stalled_socket(stem: str, stalled_socket, serve_file) -> SubprocessServer:
    """SIGTERM while one client stalls a large send; the healthy client must see 1012."""
    module = LESSON.module(stem)
    server = serve_file(path(stem), **module.SERVER_OPTIONS)
    stalled_socket(server.port, "/ws/snapshot")  # reads a few bytes, then nothing
    async with LiveClient(server.ws_url("/ws/echo")) as healthy:
        await healthy.send("ping")
        assert await healthy.receive() == "ping"
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGTERM)
        assert await healthy.wait_closed() == (1012, "")
    return server


@pytest.mark.anyio
async def test_p33_broken_sigterm_never_ends_the_process(stalled_socket, serve_file) -> None:
    server = await sigterm_with_a_stalled_socket("pitfall_shutdown", stalled_socket, serve_file)
    assert server.process is not None
    with pytest.raises(subprocess.TimeoutExpired):
        server.process.wait(scaled(3))
    server.kill()
    assert server.process.returncode == -signal.SIGKILL
    assert "Waiting for connections to close" in server.output


@pytest.mark.anyio
async def test_p33_fixed_exits_after_the_graceful_timeout(stalled_socket, serve_file) -> None:
    server = await sigterm_with_a_stalled_socket("fix_shutdown", stalled_socket, serve_file)
    assert server.process is not None
    server.process.wait(scaled(6))
    server.kill()  # ended already: this collects the last of its output
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "timeout graceful shutdown exceeded" in server.output


@pytest.mark.parametrize("stem", ["pitfall_shutdown", "fix_shutdown"])
def test_p33_endpoints_in_process(stem: str) -> None:
    module = LESSON.module(stem)
    with TestClient(module.app) as client:
        with client.websocket_connect("/ws/snapshot") as ws:
            assert len(ws.receive_text()) == len(module.SNAPSHOT)
        with client.websocket_connect("/ws/echo") as ws:
            ws.send_text("ping")
            assert ws.receive_text() == "ping"


# P34: a type hint FastAPI cannot resolve.


@pytest.mark.anyio
async def test_p34_broken_every_handshake_gets_403_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.WARNING),
        LiveServer(LESSON.app("pitfall_type_hints")) as live,
    ):
        assert await handshake_status(live.ws_url("/ws")) == 403
    assert caplog.records == []


def test_p34_broken_in_process_websocket_became_a_query_parameter() -> None:
    with TestClient(LESSON.app("pitfall_type_hints")) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws"):
                pass
    assert closed.value.code == 1008
    assert closed.value.reason[0]["loc"] == ["query", "websocket"]


@pytest.mark.anyio
async def test_p34_fixed_handshake_succeeds(serve) -> None:
    live = serve(LESSON.app("fix_type_hints"))
    async with LiveClient(live.ws_url("/ws")) as ws:
        assert await ws.receive() == "hello"
    with TestClient(LESSON.app("fix_type_hints")) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "hello"
