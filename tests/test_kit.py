"""The kit's servers, client and leak guard, tested against real sockets."""

from __future__ import annotations

import _thread
import ast
import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from lessons import find
from lessons.kit import (
    LiveClient,
    LiveServer,
    SubprocessServer,
    eventually,
    handshake_status,
    scaled,
)
from lessons.kit.leaks import settle, snapshot

ECHO_APP = find("01").app_path


def make_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    return app


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.anyio
async def test_live_server_starts_and_stops_many_times_leaving_nothing() -> None:
    app = make_app()
    for _ in range(5):
        with LiveServer(app) as server:
            async with LiveClient(server.ws_url("/ws")) as client:
                await client.send("ping")
                assert await client.receive() == "ping"
        assert not server.running
        assert not port_is_open(server.port)


@pytest.mark.anyio
async def test_stopping_a_live_server_closes_open_websockets_with_1012() -> None:
    server = LiveServer(make_app()).start()
    try:
        async with LiveClient(server.ws_url("/ws")) as client:
            server.stop()
            assert await client.wait_closed() == (1012, "")
    finally:
        server.stop()


def test_stopping_a_live_server_with_no_connection_left_still_ends_its_lifespan() -> None:
    """With no connection left, the kit skips uvicorn's pause before the close (the 1012
    above), nothing else: the app's lifespan still ends."""
    from contextlib import asynccontextmanager

    events = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        events.append("started")
        yield
        events.append("stopped")

    with LiveServer(FastAPI(lifespan=lifespan)):
        assert events == ["started"]
    assert events == ["started", "stopped"]


def test_live_server_reports_a_failing_startup() -> None:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def broken_lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unreachable")
        yield

    server = LiveServer(FastAPI(lifespan=broken_lifespan), log_level="critical")
    with pytest.raises(RuntimeError, match="did not start"):
        server.start(timeout=5)
    assert not server.running


def test_live_server_refuses_a_port_in_use() -> None:
    with LiveServer(make_app()) as first, pytest.raises(OSError, match="already in use"):
        LiveServer(make_app(), port=first.port).start()


@pytest.mark.anyio
async def test_subprocess_server_serves_logs_and_stops() -> None:
    with SubprocessServer(ECHO_APP) as server:
        pid = server.pid
        async with LiveClient(server.ws_url("/ws/echo")) as client:
            await client.send("from another process")
            assert await client.receive() == "Echo: from another process"
        line = server.wait_for_output(r'"WebSocket /ws/echo" \[accepted\]')
        assert "127.0.0.1" in line
    assert pid is not None and not server.running
    # uvicorn shuts down gracefully, then the process ends by SIGTERM: -15, not 0.
    assert server.process is not None and server.process.returncode == -signal.SIGTERM
    assert "Application shutdown complete" in server.output
    assert not port_is_open(server.port)


@pytest.mark.anyio
async def test_subprocess_servers_can_learn_their_ports_before_they_start() -> None:
    unused = SubprocessServer(ECHO_APP)
    unused.bind()
    assert port_is_open(unused.port)  # bound and listening: connections wait in the backlog
    unused.stop()  # never started: stopping closes the socket
    assert not port_is_open(unused.port)
    server = SubprocessServer(ECHO_APP)
    port = server.bind()
    with server:
        assert server.port == port
        async with LiveClient(server.ws_url("/ws/echo")) as client:
            await client.send("on the port bound first")
            assert await client.receive() == "Echo: on the port bound first"
    assert not port_is_open(port)


@pytest.mark.anyio
async def test_subprocess_server_kill_is_abrupt_1006(serve_file) -> None:
    server = serve_file(ECHO_APP)
    async with LiveClient(server.ws_url("/ws/echo")) as client:
        server.kill()
        assert await client.wait_closed() == (1006, "")


@pytest.mark.anyio
async def test_a_paused_subprocess_server_answers_nothing_until_resumed(serve_file) -> None:
    server = serve_file(ECHO_APP)
    async with LiveClient(server.ws_url("/ws/echo")) as client:
        server.pause()
        await client.send("are you there?")
        await client.receive_nothing(within=0.5)
        server.resume()
        assert await client.receive() == "Echo: are you there?"


def test_subprocess_server_that_cannot_start_shows_its_output(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('no app here')\n")
    with pytest.raises(RuntimeError, match="no app here"):
        SubprocessServer(broken).start(timeout=20)


@pytest.mark.anyio
async def test_client_receive_times_out_with_a_readable_error() -> None:
    with LiveServer(make_app()) as server:
        async with LiveClient(server.ws_url("/ws"), name="alice") as client:
            with pytest.raises(TimeoutError, match=r"alice: no message within 0\.2s"):
                await client.receive(timeout=0.2)
            await client.send("unexpected")
            with pytest.raises(AssertionError, match="got 'unexpected'"):
                await client.receive_nothing(within=1.0)
        assert any("→ text 'unexpected'" in line for line in client.transcript)


@pytest.mark.anyio
async def test_client_prints_a_readable_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    with LiveServer(make_app()) as server:
        async with LiveClient(server.ws_url("/ws"), name="ada") as client:
            await client.send("hi")
            await client.receive()
            await client.close(4000, "bye")
    client.print_transcript()
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(maxsplit=1)[1] for line in printed] == [
        f"ada ⇄ connected to {server.ws_url('/ws')}",
        "ada → text 'hi'",
        "ada ← text 'hi'",
        "ada ✕ closed by ada: 4000 'bye'",
    ]


@pytest.mark.anyio
async def test_handshake_status_reports_accept_and_refusal() -> None:
    with LiveServer(make_app()) as server:
        assert await handshake_status(server.ws_url("/ws")) == 101
        assert await handshake_status(server.ws_url("/missing")) == 403


@pytest.mark.anyio
async def test_closing_a_client_with_unread_messages_is_prompt_and_clean() -> None:
    """P38: a websockets client whose queue is full reads nothing more; closing it would
    wait out its close timeout (10 s) and end with 1006. LiveClient drops the unread."""
    sent = []
    app = FastAPI()

    @app.websocket("/ws")
    async def flood(websocket: WebSocket) -> None:
        await websocket.accept()
        for n in range(200):
            await websocket.send_text(f"message {n}")
            sent.append(n)
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()

    with LiveServer(app) as server:
        client = LiveClient(server.ws_url("/ws"))
        async with client:
            await eventually(lambda: len(sent) == 200)  # all of it on its way, none read
            started = time.monotonic()
        assert time.monotonic() - started < scaled(1)
        assert client.close_code == 1000
        assert re.search(
            r"closed by client: 1000 '' \(\d+ unread messages dropped\)$", client.transcript[-1]
        )


def test_the_leak_guard_sees_a_thread_and_a_listening_socket() -> None:
    before = snapshot()
    release = threading.Event()
    worker = threading.Thread(target=release.wait, name="forgotten-worker")
    worker.start()
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        leaks = settle(before, timeout=0.1)
        assert "thread 'forgotten-worker'" in leaks
        assert f"listening socket on port {listener.getsockname()[1]}" in leaks
    finally:
        release.set()
        worker.join()
        listener.close()
    assert settle(before) == []


ELDER = """
import socket, subprocess, sys
sys.stdin.readline()  # started before the snapshot; its socket and its helper only after it
own = socket.create_server(("127.0.0.1", 0))
helper = subprocess.Popen([sys.executable, "-c",
    "import socket, sys; s = socket.create_server(('127.0.0.1', 0)); "
    "print(s.getsockname()[1], flush=True); sys.stdin.read()"], stdout=subprocess.PIPE, text=True)
print(own.getsockname()[1], helper.stdout.readline(), end="", flush=True)
sys.stdin.read()
helper.kill()
"""


def test_the_leak_guard_leaves_an_older_process_its_sockets_its_helpers_and_theirs() -> None:
    elder = subprocess.Popen(
        [sys.executable, "-c", ELDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        before = snapshot()
        assert elder.stdin is not None and elder.stdout is not None
        elder.stdin.write("start your helper\n")
        elder.stdin.flush()
        ports = elder.stdout.readline().split()
        assert settle(before, timeout=0.1) == []  # JupyterLab's kernel binding its ports late,
        mine = socket.create_server(("127.0.0.1", 0))  # or started lazily, is this
        with mine:
            assert settle(before, timeout=0.1) == [
                f"listening socket on port {mine.getsockname()[1]}"
            ], ports
    finally:
        elder.kill()
        elder.communicate()


def test_a_start_interrupted_by_a_stop_signal_leaves_nothing_serving() -> None:
    """Ctrl-C, or SIGTERM or SIGHUP made one, while a server starts (``wslab classroom``
    got one there in CI): the server stops before the interrupt goes on, and nothing is
    left for the exit handlers to stop after its socket has been closed."""
    entered, release = threading.Event(), threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        entered.set()
        await asyncio.to_thread(release.wait, scaled(5))  # still starting
        yield

    def interrupt() -> None:
        entered.wait(scaled(5))
        _thread.interrupt_main()  # as a signal's KeyboardInterrupt does
        release.set()

    server = LiveServer(FastAPI(lifespan=lifespan))
    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        server.start()
    interrupter.join()
    assert not server.running


# The kit, the CLI and the testing notebook's fixture run stock uvicorn: its public API.

ROOT = Path(__file__).parents[1]
STOCK_UVICORN = [*ROOT.glob("lessons/kit/*.py"), *ROOT.glob("lessons/cli/*.py")]
STOCK_UVICORN += ROOT.glob("lessons/bench/*.py")
STOCK_UVICORN.append(ROOT / "notebooks" / "testing" / "conftest.py")


def uvicorn_subclasses(path: Path) -> list[str]:
    """The classes in ``path`` with a base that names something imported from uvicorn."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"uvicorn"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("uvicorn"):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name.startswith("uvicorn")}
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for base in node.bases
        if ast.unparse(base).split(".")[0] in names
    ]


def test_no_kit_or_cli_module_subclasses_uvicorn() -> None:
    assert len(STOCK_UVICORN) > 30
    found = {path.name: classes for path in STOCK_UVICORN if (classes := uvicorn_subclasses(path))}
    assert not found, f"subclasses of uvicorn's classes (use its public API): {found}"
