"""`wslab serve` stops everything it started on Ctrl-C, SIGTERM and SIGHUP alike.

Each signal goes to the `wslab` process only, as `kill`, systemd's main-process mode or
`docker stop` send it; the servers and Redis it started run in their own sessions, so they
go away only if `wslab` stops them. Afterwards no process it started is left, no port it
opened is listening, and it has said so and exited 0.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from lessons.kit import scaled
from lessons.kit.leaks import alive, descendants, listening_anywhere

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`wslab serve ARGS --port 0` in its own process, once it says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lessons", "serve", *args, "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "ready: press Ctrl-C" in line:
            return process, lines
    process.wait(scaled(10))
    raise AssertionError("wslab serve did not get ready:\n" + "".join(lines))


def ports_in(lines: list[str]) -> set[int]:
    return {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", "".join(lines))}


def gone(pids: set[int], ports: set[int], timeout: float = 5.0) -> tuple[set[int], set[int]]:
    """The processes still alive and the ports still listening after ``timeout`` seconds."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        left = {pid for pid in pids if alive(pid)}, {p for p in ports if listening_anywhere(p)}
        if left == (set(), set()) or time.monotonic() > deadline:
            return left
        time.sleep(0.05)  # processes of another session: nothing to wait on


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda sig: sig.name)
@pytest.mark.parametrize(
    "args", [["01"], ["05", "--instances", "2"]], ids=["one process", "two instances and redis"]
)
def test_every_stop_signal_stops_every_process_and_port(
    args: list[str], sig: signal.Signals
) -> None:
    process, lines = start(*args)
    try:
        pids = {process.pid, *descendants(process.pid)}
        ports = ports_in(lines)
        single = len(args) == 1
        assert len(pids) == (1 if single else 4), lines  # wslab (+ Redis and 2 instances)
        assert len(ports) == (1 if single else 3), lines  # its own, or theirs
        assert all(listening_anywhere(port) for port in ports)
        started = time.monotonic()
        process.send_signal(sig)
        output, _ = process.communicate(timeout=scaled(20))
        assert process.returncode == 0, output
        assert time.monotonic() - started < scaled(10)
        assert output.rstrip().endswith("wslab: stopped")
        assert "Traceback" not in output
        assert gone(pids, ports) == (set(), set())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(scaled(5))
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_a_stop_signal_during_the_bench_stops_its_servers(sig: signal.Signals) -> None:
    command = [sys.executable, "-m", "lessons", "bench", "--clients", "2", "--messages", "5000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        pids: set[int] = set()
        for line in process.stdout:
            if "running: naive manager" in line:  # the baseline is done, its server stopped
                break
        deadline = time.monotonic() + scaled(10)
        while not pids and time.monotonic() < deadline:  # the naive manager's server
            pids = descendants(process.pid)
            time.sleep(0.05)
        assert pids
        process.send_signal(sig)
        output, _ = process.communicate(timeout=scaled(20))
        assert process.returncode == 130
        assert output.rstrip().endswith("wslab: stopped") and "Traceback" not in output
        assert gone(pids, set()) == (set(), set())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(scaled(5))
        if process.stdout is not None:
            process.stdout.close()
