"""Capacity behind a proxy, measured side by side in one run: lesson 06's optional section.

``await capacity()`` starts one echo app in its own process and Caddy and nginx in front
of it, then, for each way in (direct, through Caddy with TLS, through nginx):

- opens ``connections`` idle WebSockets and reads, from /proc, how many file descriptors
  and how much memory (RSS) each one costs the app and the proxy;
- runs ``round_trips`` sequential echoes and reports the median round trip and the CPU time
  the server processes (app and proxy) spent per message, as ratios to going direct.

It prints the process's file-descriptor limit (``ulimit -n``) beside them: every
connection is one descriptor in the app and two in the proxy (client side, upstream side).
"""

from __future__ import annotations

import resource
import statistics
import time
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path

import websockets

from lessons import find
from lessons.bench.bench import COARSE, NO_NGINX, coarse, cpu_seconds
from lessons.kit.leaks import descendants
from lessons.kit.proxy import Caddy, Nginx, find_nginx, tls
from lessons.kit.server import SubprocessServer

LESSON = find("06")


@dataclass
class Way:
    """One way in: its URL, the processes that carry it, and what was measured."""

    name: str
    url: str
    pids: list[int]
    ca_file: Path | None = None
    fds: float = 0.0  # per connection, in the processes of this way
    kib: float = 0.0  # resident memory per connection
    round_trip: float = 0.0  # median, seconds
    cpu: float = 0.0  # CPU seconds per message


def _fds(pids: list[int]) -> int:
    return sum(len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in _all(pids))


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in _all(pids):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _all(pids: list[int]) -> set[int]:
    return {*pids, *(child for pid in pids for child in descendants(pid))}


async def _measure(way: Way, app: int, connections: int, round_trips: int) -> None:
    fds, kib = _fds(way.pids), _rss_kib(way.pids)
    async with AsyncExitStack() as stack:
        for _ in range(connections):
            socket = await stack.enter_async_context(
                websockets.connect(way.url, ssl=tls(way.ca_file))
            )
            await socket.send("hi")
            await socket.recv()  # the app has this connection for sure
        way.fds = (_fds(way.pids) - fds) / connections
        way.kib = (_rss_kib(way.pids) - kib) / connections
        times = []
        cpu = cpu_seconds([*way.pids, app])  # a proxied message costs the app too
        for n in range(round_trips):
            started = time.perf_counter()
            await socket.send(f"ping {n}")
            await socket.recv()
            times.append(time.perf_counter() - started)
        way.cpu = (cpu_seconds([*way.pids, app]) - cpu) / round_trips
        way.round_trip = statistics.median(times)


async def capacity(connections: int = 100, round_trips: int = 1000) -> list[Way]:
    """Measure and print the table; returns the measurements."""
    with ExitStack() as stack:
        app = stack.enter_context(SubprocessServer(LESSON.file("fix_idle_timeout")))
        assert app.pid is not None
        ways = [Way("direct", app.ws_url("/ws"), [app.pid])]
        caddy = stack.enter_context(Caddy([app.port]))
        ways.append(Way("through Caddy (TLS)", caddy.ws_url("/ws"), [caddy.pid or 0]))
        ways[-1].ca_file = caddy.ca_file
        if find_nginx():
            location = LESSON.module("fix_no_upgrade").LOCATION
            nginx = stack.enter_context(Nginx([app.port], location))
            ways.append(Way("through nginx", nginx.ws_url("/ws"), [nginx.pid or 0]))
        for way in ways:
            await _measure(way, app.pid, connections, round_trips)
    _print(ways, connections, round_trips)
    return ways


def _print(ways: list[Way], connections: int, round_trips: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"file descriptors per process (ulimit -n): {soft} (hard limit {hard})")
    print(f"{connections} idle connections each, then {round_trips} echoes one at a time:")
    print(
        f"{'way in':<22}{'fds/conn':>9}{'KiB/conn':>10}{'round trip':>12}{'×':>6}"
        f"{'CPU/msg':>10}{'×':>6}"
    )
    base = ways[0]
    for way in ways:
        mark = "~" if coarse(way.cpu * round_trips) else ""
        print(
            f"{way.name:<22}{way.fds:>9.1f}{way.kib:>10.1f}{way.round_trip * 1e6:>10.0f}µs"
            f"{way.round_trip / base.round_trip:>6.2f}{mark + format(way.cpu * 1e6, '.0f'):>8}µs"
            f"{(way.cpu / base.cpu if base.cpu else float('nan')):>6.2f}"
        )
    if find_nginx() is None:
        print(f"{'through nginx':<22}skipped: {NO_NGINX}")
    print("(fds and KiB: the proxy's own through a proxy, the app's direct; CPU: app + proxy)")
    if any(coarse(way.cpu * round_trips) for way in ways):
        print(f"~ CPU from fewer than {COARSE} ticks of the kernel's clock: too coarse to compare")
