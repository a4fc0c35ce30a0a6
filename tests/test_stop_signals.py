"""`wslab serve` stops everything it started on Ctrl-C, SIGTERM and SIGHUP alike.

Each signal goes to the `wslab` process only, as `kill`, systemd's main-process mode or
`docker stop` send it; the servers and Redis it started run in their own sessions, so they
go away only if `wslab` stops them. Afterwards no process it started is left, no port it
opened is listening, and it has said so and exited 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lessons.kit import scaled
from lessons.kit.forkserver import ENABLE as ENABLE_FORK_SERVER
from lessons.kit.leaks import alive, descendants, listening_anywhere

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@contextmanager
def wslab(*args: str, until: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`wslab ARGS` in its own process, once it printed a line containing ``until``;
    killed on the way out if it is still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lessons", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, ENABLE_FORK_SERVER: "0"},  # servers spawned, as learners run them
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if until in line:
                break
        else:
            raise AssertionError(f"no line with {until!r}:\n" + "".join(lines))
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(scaled(5))
        if process.stdout is not None:
            process.stdout.close()


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
    serve = ["serve", *args, "--port", "0", "--log-level", "warning"]
    with wslab(*serve, until="ready: press Ctrl-C") as (process, lines):
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_a_stop_signal_during_the_bench_stops_its_servers(sig: signal.Signals) -> None:
    bench = ["bench", "--clients", "2", "--messages", "5000"]
    # once the baseline is done, its server stopped, and the naive manager's is starting
    with wslab(*bench, until="running: naive manager") as (process, _):
        pids: set[int] = set()
        deadline = time.monotonic() + scaled(10)
        while not pids and time.monotonic() < deadline:
            pids = descendants(process.pid)
            time.sleep(0.05)  # a process of another session: nothing to wait on
        assert pids
        process.send_signal(sig)
        output, _ = process.communicate(timeout=scaled(20))
        assert process.returncode == 130
        assert output.rstrip().endswith("wslab: stopped") and "Traceback" not in output
        assert gone(pids, set()) == (set(), set())
