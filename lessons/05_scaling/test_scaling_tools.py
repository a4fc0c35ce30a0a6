"""The kit's tools for lesson 05: the Redis runner, `wslab serve --instances`, `wslab bench`."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lessons import find
from lessons.kit.bench import run_bench
from lessons.kit.cluster import _follow as follow
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer

LESSON = find("05_scaling")


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


def test_redis_server_kill_and_restart_keep_the_port(own_redis: RedisServer) -> None:
    url = own_redis.url
    own_redis.kill()
    assert not own_redis.running
    own_redis.restart()
    assert own_redis.url == url and own_redis.running


def test_redis_server_reports_a_missing_binary() -> None:
    server = RedisServer(executable="/nonexistent/redis-server")
    if not server.managed:
        pytest.skip("REDIS_URL is set: nothing is started")
    with pytest.raises((RuntimeError, OSError)):
        server.start()
    server.stop()


def test_wslab_serve_instances_fans_out_restarts_a_killed_instance_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "lessons", "serve", "05", "--instances", "2", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        found = []
        for line in process.stdout:
            found += re.findall(r"\(pid (\d+)\): open (http://\S+)/", line)
            if "Ctrl-C" in line:
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
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


EXITS_ON_REQUEST = """
import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/exit")
def leave() -> None:
    os._exit(3)
"""


def test_an_instance_that_exits_by_itself_stops_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "exits.py"
    app.write_text(EXITS_ON_REQUEST)
    with SubprocessServer(app) as server:
        with pytest.raises(OSError):  # the process is gone before it answers
            urllib.request.urlopen(server.http_url + "/exit", timeout=10)
        assert follow([server], poll=0.01) == 1
    assert f"instance {server.port} exited (3); stopping the others" in capsys.readouterr().out


def test_bench_prints_every_scenario_with_ratios_to_the_baseline() -> None:
    out = io.StringIO()
    assert run_bench(clients=3, messages=20, size=1000, timeout=2.0, out=out) == 0
    rows = [line for line in out.getvalue().splitlines() if re.search(r"\d+/\d+", line)]
    assert len(rows) == 7
    assert rows[0].startswith("websockets broadcast() (baseline)") and " 1.00 " in rows[0]
    assert all("60/60" in row for row in rows)  # tiny volumes: even the stalled runs finish


def test_serve_instances_out_of_range_is_one_line_and_status_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lessons", "serve", "05", "--instances", "99"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "wslab: error: --instances must be between 1 and 16, not 99"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"clients": 100_000}, "clients must be between 1 and 500"),
        ({"size": 0}, "size must be between 1 and 1000000"),
        ({"timeout": 600.0}, r"timeout must be in \(0, 60.0\] seconds"),
    ],
)
def test_bench_refuses_unbounded_arguments(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_bench(**arguments)
