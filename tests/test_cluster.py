"""The kit's Redis runner and cluster, and `wslab serve --instances` as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lessons.cli.serve import follow
from lessons.kit import SubprocessServer, scaled
from lessons.kit.redis_server import RedisServer

WSLAB = [sys.executable, "-m", "lessons"]


def test_redis_server_starts_without_persistence_and_stops() -> None:
    with RedisServer() as server:
        client = server.client()
        try:
            assert client.ping()
            if server.managed:
                assert client.config_get("save") == {"save": ""}
                assert client.config_get("appendonly") == {"appendonly": "no"}
        finally:
            client.close()
    assert not server.managed or not server.running


def test_redis_server_kill_and_restart_keep_the_port() -> None:
    server = RedisServer()
    if not server.managed:
        pytest.skip("REDIS_URL is set: this test needs a Redis it may kill")
    with server:
        url = server.url
        server.kill()
        assert not server.running
        server.restart()
        assert server.url == url and server.running


def test_redis_server_reports_a_missing_binary() -> None:
    server = RedisServer(executable="/nonexistent/redis-server")
    if not server.managed:
        pytest.skip("REDIS_URL is set: nothing is started")
    with pytest.raises((RuntimeError, OSError)):
        server.start()
    server.stop()


def test_wslab_serve_instances_fans_out_restarts_a_killed_instance_and_stops_on_ctrl_c() -> None:
    command = [*WSLAB, "serve", "05", "--instances", "2", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        found = []
        for line in process.stdout:
            found += re.findall(r"\(pid (\d+)\): (?:open|also) (http://\S+)/", line)
            if "ready" in line:
                break
        assert len(found) == 2
        pids = [int(pid) for pid, _ in found]
        first, second = (url.replace("http://", "ws://") + "/ws" for _, url in found)
        with connect(first, open_timeout=5) as alice, connect(second, open_timeout=5) as bob:
            ports = [int(url.rpartition(":")[2]) for _, url in found]
            welcomes = [json.loads(ws.recv(timeout=5)) for ws in (alice, bob)]
            # each instance is named after its port, and knows every port (the page's peers)
            assert [w["instance"] for w in welcomes] == [str(port) for port in ports]
            assert [w["peers"] for w in welcomes] == [ports, ports]
            alice.send(json.dumps({"type": "say", "text": "across"}))
            for ws in (alice, bob):  # the sender gets its message back too
                assert json.loads(ws.recv(timeout=5))["text"] == "across"
            os.kill(pids[0], signal.SIGTERM)  # a rolling restart of the first instance
            with pytest.raises(ConnectionClosed):
                alice.recv(timeout=10)
            assert alice.close_code == 1012
        back = next(line for line in process.stdout if "is back" in line)
        assert f"instance {ports[0]} is back" in back
        with connect(first, open_timeout=5) as carol:
            assert json.loads(carol.recv(timeout=5))["instance"] == str(ports[0])
        process.send_signal(signal.SIGINT)
        assert process.wait(scaled(15)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


CRASHES_ON_REQUEST = """
import os
from pathlib import Path

from fastapi import FastAPI

CRASHED = Path(__file__).with_name("crashed")
if CRASHED.exists():
    raise RuntimeError("refusing to start again")
app = FastAPI()


@app.get("/crash")
def crash() -> None:
    CRASHED.touch()
    os._exit(3)
"""


def test_an_instance_that_crashes_is_started_again_once_and_one_that_does_not_come_back_stops_all(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    serve_file: type[SubprocessServer],
    http: httpx.Client,
) -> None:
    app = tmp_path / "crashes.py"
    app.write_text(CRASHES_ON_REQUEST)
    server = serve_file(app)
    with pytest.raises(httpx.TransportError):  # the process is gone before it answers
        http.get(server.http_url + "/crash")
    assert follow([server], poll=0.01) == 1  # no retry loop: it returns
    out = capsys.readouterr().out
    assert f"instance {server.port} ended with exit status 3; starting it again" in out
    assert re.search(
        rf"instance {server.port} did not come back: .*RuntimeError: refusing to start again", out
    ), out
    assert "WSLAB READY" not in out and "Traceback" not in out.split("did not come back")[1]


def test_serve_instances_out_of_range_is_one_line_and_status_2() -> None:
    result = subprocess.run(
        [*WSLAB, "serve", "05", "--instances", "99"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wslab serve: error: argument --instances: must be between 1 and 16, not 99"
    )
