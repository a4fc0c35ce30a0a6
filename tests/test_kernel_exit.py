"""A notebook leaves its servers running; restarting or shutting down its kernel stops them.

After "Run All" a lesson's pages stay reachable: its last cell no longer stops the servers.
They stop when the learner calls ``stop_all()``, restarts or shuts down the kernel, or
closes JupyterLab, and CI's runner stops them when a notebook ends. These tests drive a
real kernel the way JupyterLab does (``jupyter_client``'s kernel manager, whose restart and
shutdown first ask the kernel to exit) with a thread server, a server process and a Redis
running in it, and find nothing left afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager

from lessons.kit.leaks import alive
from lessons.kit.notebooks import execute
from lessons.kit.timing import scaled

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc"),
]

START_SERVERS = """
import json
from lessons import find
from lessons.kit import LiveServer, SubprocessServer
from lessons.kit.redis_server import RedisServer

lesson = find("01")
thread = LiveServer(lesson.app()).start()
process = SubprocessServer(lesson.app_path).start()
# Spawned, though the suite asks for forks: a kernel's shutdown would wait for the forkserver.
assert type(process.process).__name__ == "Popen"
redis = RedisServer().start()
print(json.dumps({"pids": [process.pid, redis.process.pid],
                  "ports": [thread.port, process.port, redis.port]}))
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _left_behind(started: dict[str, list[int]]) -> list[str]:
    return [f"process {pid}" for pid in started["pids"] if alive(pid)] + [
        f"port {port}" for port in started["ports"] if _listening(port)
    ]


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelManager]:
    """A kernel as JupyterLab starts one (its default shutdown timing), always stopped.

    Without REDIS_URL, so that the kernel starts a Redis of its own."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    yield manager
    if manager.has_kernel:
        manager.shutdown_kernel(now=True)
    else:  # it ended: remove its connection file and close its messaging context
        manager.cleanup_resources()


def _start_servers(manager: KernelManager) -> dict[str, list[int]]:
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=scaled(60))
        printed: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                printed.append(message["content"]["text"])

        reply = client.execute_interactive(START_SERVERS, output_hook=collect, timeout=scaled(60))
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    started: dict[str, list[int]] = json.loads("".join(printed))
    assert not [port for port in started["ports"] if not _listening(port)]
    return started


def _kill(started: dict[str, list[int]]) -> None:
    """Whatever a failing test found still running is killed, so nothing outlives it."""
    for pid in started["pids"]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_restarting_then_shutting_down_the_kernel_stops_every_server(
    kernel: KernelManager,
) -> None:
    started = _start_servers(kernel)
    try:
        kernel.restart_kernel(now=False)  # Kernel → Restart Kernel…
        assert not _left_behind(started), "left behind by a restart"
        started = _start_servers(kernel)  # in the new kernel
        kernel.shutdown_kernel(now=False)  # Kernel → Shut Down Kernel
        assert not _left_behind(started), "left behind by a shutdown"
    finally:
        _kill(started)


def test_a_kernel_terminated_while_shutting_down_still_stops_its_servers(
    kernel: KernelManager,
) -> None:
    """A kernel slow to exit is sent SIGTERM, which skips ``atexit``; the kit handles it."""
    started = _start_servers(kernel)
    try:
        kernel.signal_kernel(signal.SIGTERM)
        kernel.finish_shutdown()  # waits for the kernel process to end
        assert not _left_behind(started)
    finally:
        _kill(started)


def test_the_headless_runner_stops_the_servers_a_notebook_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(START_SERVERS)])
    execute(notebook, tmp_path, cell_timeout=scaled(60))
    [output] = notebook.cells[0].outputs
    started = json.loads(output["text"])
    try:
        assert not _left_behind(started)
    finally:
        _kill(started)
