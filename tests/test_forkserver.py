"""Servers forked from multiprocessing's forkserver (lessons.kit.forkserver, which the suite
turns on) behave as spawned ones do, and nothing outlives the process that started them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lessons import find
from lessons.kit import SubprocessServer, eventually, scaled
from lessons.kit.forkserver import ENABLE, ForkedProcess, helper
from lessons.kit.leaks import alive, settle, snapshot

ECHO_APP = find("01").app_path
# Reads a kit setting read at import: a forked server must read its own.
SETTINGS_APP = """
import os, sys
from lessons.kit import server
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def settings() -> dict:
    return {"setting": os.environ.get("SETTING"), "user_timeout": server.USER_TIMEOUT,
            "cwd": os.getcwd(), "path": sys.path[0], "argv": sys.argv[2:]}
"""


def helpers() -> set[int]:
    """This process's multiprocessing forkserver and resource tracker."""
    children = snapshot().children.items()
    return {pid for pid, parent in children if parent == os.getpid() and helper(pid)}


def test_a_forked_server_has_the_settings_directory_and_output_a_spawned_one_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "settings_app.py"
    app.write_text(SETTINGS_APP)
    monkeypatch.chdir(tmp_path)
    env = {"SETTING": "mine", "WSLAB_TCP_USER_TIMEOUT": "1.5"}
    seen = {}
    for fork in (True, False):
        monkeypatch.setenv(ENABLE, "1" if fork else "0")
        with SubprocessServer(app, env=env) as server:
            assert isinstance(server.process, ForkedProcess) is fork
            seen[fork] = httpx.get(server.http_url, timeout=scaled(5)).json()
            server.wait_for_output(rf"Started server process \[{server.pid}\]")
        assert server.process is not None and server.process.returncode == -signal.SIGTERM
    assert seen[True] == seen[False]
    assert seen[True]["setting"] == "mine" and seen[True]["user_timeout"] == 1.5
    assert seen[True]["cwd"] == seen[True]["path"] == str(tmp_path)  # as `python -m` here


def test_a_server_that_changes_a_setting_read_at_startup_is_spawned() -> None:
    with SubprocessServer(ECHO_APP, env={"WEBSOCKETS_MAX_LINE_LENGTH": "9000"}) as server:
        assert isinstance(server.process, subprocess.Popen)


def test_an_app_that_exits_while_loading_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('no app here')\n")
    with pytest.raises(RuntimeError, match="no app here"):
        SubprocessServer(broken).start(timeout=20)


def test_the_leak_guard_sees_a_forked_server_left_running() -> None:
    with SubprocessServer(ECHO_APP):
        assert len(helpers()) == 2  # up before the snapshot: its later children are still new
    before = snapshot()
    server = SubprocessServer(ECHO_APP).start()
    try:
        assert f"child process {server.pid}" in " ".join(settle(before, timeout=0.1))
    finally:
        server.stop()
    assert settle(before) == []


def test_servers_of_a_killed_forkserver_are_killed_and_it_is_replaced() -> None:
    server = SubprocessServer(ECHO_APP).start()
    try:
        first = helpers()
        (forkserver,) = [
            pid for pid in first if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        os.kill(forkserver, signal.SIGKILL)
        asyncio.run(eventually(lambda: not alive(server.pid or 0), timeout=10))
    finally:
        server.stop()
    with SubprocessServer(ECHO_APP) as again:
        assert isinstance(again.process, ForkedProcess) and forkserver not in helpers()


STARTER = """
import os, sys
os.environ["WSLAB_FORK_SERVER"] = "1"
from lessons.kit import SubprocessServer
from lessons.kit.leaks import snapshot

server = SubprocessServer(sys.argv[1]).start()
server.pause()  # even a frozen server is stopped
print(json.dumps(sorted(snapshot().children)), flush=True)  # with the forkserver, tracker
sys.stdin.read()
"""


def test_when_the_starting_process_is_killed_its_servers_and_forkserver_end() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", "import json\n" + STARTER, str(ECHO_APP)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        pids = json.loads(starter.stdout.readline())
        assert len(pids) == 3 and all(map(alive, pids))
    finally:
        starter.kill()
        starter.communicate()
    # Not our children: nothing to wait on but their state.
    asyncio.run(eventually(lambda: not any(map(alive, pids)), timeout=10))
