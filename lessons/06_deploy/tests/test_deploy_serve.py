"""`wslab serve 06`: Redis, two instances and a proxy; one URL to share and the CA file
printed; every process and port gone after Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lessons.kit import LiveClient, scaled
from lessons.kit.forkserver import ENABLE as ENABLE_FORK_SERVER
from lessons.kit.leaks import alive, descendants, listening_anywhere
from lessons.kit.proxy import tls


def serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`wslab serve 06 ARGS` in its own process, and its output up to the ready line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lessons", "serve", "06", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, ENABLE_FORK_SERVER: "0"},  # servers spawned, as learners run them
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "ready: press Ctrl-C" in line:
            break
    return process, "".join(lines)


async def welcome(url: str, ca_file: str | None) -> dict[str, str]:
    async with LiveClient(url, ssl=tls(ca_file)) as websocket:
        return await websocket.receive_json()


@pytest.mark.parametrize(
    ("proxy", "sig"),
    [
        ("caddy", signal.SIGINT),
        ("caddy", signal.SIGTERM),
        ("caddy", signal.SIGHUP),
        ("nginx", signal.SIGTERM),
    ],
    ids=["caddy-SIGINT", "caddy-SIGTERM", "caddy-SIGHUP", "nginx-SIGTERM"],
)
def test_serve_06_prints_one_url_and_stops_everything_on_a_stop_signal(
    proxy: str, sig: signal.Signals, request: pytest.FixtureRequest
) -> None:
    if proxy == "nginx":
        request.getfixturevalue("nginx")  # skips (or fails when required) without nginx
    process, output = serve("--proxy", proxy, "--log-level", "warning")  # two instances
    try:
        assert "ready: press Ctrl-C" in output, output
        assert output.count("the address to share") + output.count("this machine only:") == 1
        pids = {process.pid, *descendants(process.pid)}
        ports = {int(port) for port in re.findall(r"(?:127\.0\.0\.1|localhost):(\d+)", output)}
        workers = 1 if proxy == "caddy" else 2  # nginx: a master and a worker
        assert len(pids) == 4 + workers, output  # wslab, Redis, 2 instances and the proxy
        assert len(ports) == 4, output
        url = re.search(r"open ((https?)://(?:localhost|127\.0\.0\.1):\d+)/", output)
        assert url, output
        ca = re.search(r"CA certificate, for clients to trust: (\S+)", output)
        assert (ca is not None) == (url[2] == "https"), output
        ws_url = url[1].replace("http", "ws", 1) + "/ws/lobby"
        assert asyncio.run(welcome(ws_url, ca[1] if ca else None))["type"] == "welcome"
        process.send_signal(sig)
        rest, _ = process.communicate(timeout=scaled(30))
        assert process.returncode == 0, rest
        assert rest.rstrip().endswith("wslab: stopped") and "Traceback" not in rest
        assert "WSLAB READY" not in output + rest  # the kit's own marker, not for people
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline and (
            any(alive(pid) for pid in pids) or any(listening_anywhere(p) for p in ports)
        ):
            time.sleep(0.05)  # processes of other sessions: nothing to wait on
        assert not [pid for pid in pids if alive(pid)]
        assert not [port for port in ports if listening_anywhere(port)]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=scaled(5))
