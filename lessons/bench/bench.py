"""``wslab bench``: fan-out to N clients on loopback, from one run, compared to a baseline.

Every scenario starts its own servers on 127.0.0.1, connects N clients (one of them also
publishes M messages as fast as it can), and measures each delivery's latency (send to
receive, same clock) and the deliveries per second. The baseline is the pure
``websockets`` library's ``broadcast()``; then a naive FastAPI manager (a sequential
``await send`` loop), lesson 05's production manager (bounded queue and sender task per
connection), the same with its senders corked (``lessons.bench.corked``: what batching
segments buys), the same over Redis with two processes, and each with one stalled client
(connected, never reading). With ``proxy=True``: the production manager behind Caddy (TLS)
and behind nginx, as lesson 06 deploys it. Bounded in clients, messages and time; loopback
only.

The N clients live in this one process and share the machine's cores with the servers:
they are kept cheap (``lessons.bench.fanout``: frames cut straight from the bytes read, no
library client) so that the servers, not the clients, set the pace. Every scenario reports
the CPU time its server processes (app, Redis, proxy) spent per delivery, and beside it the
clients' (this process's). CPU per delivery is the fair figure for what a design, Redis or
a proxy costs: it moves much less than the rate when other work shares the cores. A client
that keeps up reads each write as it comes, so it costs about as much per delivery as a
server that writes every frame on its own, and much less when frames arrive together.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import textwrap
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from lessons import LESSONS_DIR, find
from lessons.bench.fanout import FanoutClient
from lessons.kit.client import stalled_client
from lessons.kit.leaks import descendants
from lessons.kit.proxy import Caddy, Nginx, find_nginx
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer
from lessons.kit.timing import scaled

LOOPBACK = "127.0.0.1"
PRODUCTION_APP = LESSONS_DIR / "05_scaling" / "app.py"
CORKED_APP = f"{Path(__file__).with_name('corked.py')}:app"  # the same, senders corked
# The production app with its limits opened up: the benchmark floods on purpose.
PRODUCTION_ENV = {"RATE": "1e9", "BURST": "1000000000", "MAX_MESSAGE_BYTES": "16777216"}
LIMITS = {"clients": 500, "messages": 5000, "size": 1_000_000, "timeout": 60.0}
DELIVERIES_PER_SECOND = 10_000  # a modest floor: the default timeout leaves room for the load


def default_timeout(clients: int, messages: int) -> float:
    """Seconds per scenario when none is given: 5, or more when the load needs it, so that a
    scenario that keeps up finishes instead of being cut at the deadline."""
    return min(LIMITS["timeout"], max(5.0, clients * messages / DELIVERIES_PER_SECOND))


# --- the naive manager: a sequential `await send` loop (lesson 03's first step) ---

naive_app = FastAPI()
_naive_clients: set[WebSocket] = set()


@naive_app.websocket("/ws")
async def _naive_room(websocket: WebSocket) -> None:
    await websocket.accept()
    _naive_clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            for client in list(_naive_clients):
                await client.send_text(text)  # waits for each client in turn
    except WebSocketDisconnect:
        pass
    finally:
        _naive_clients.discard(websocket)


# --- the baseline: a pure websockets server with broadcast(), in its own process ---


async def _serve_websockets(sock: socket.socket, on_ready: Callable[[], None]) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    members: set[ServerConnection] = set()

    async def room(websocket: ServerConnection) -> None:
        members.add(websocket)
        try:
            async for message in websocket:
                broadcast(members, message)
        except ConnectionClosed:  # a reset connection is a disconnect like any other
            pass
        finally:
            members.discard(websocket)

    async with serve(room, sock=sock) as server:
        on_ready()
        await server.serve_forever()


class _WebsocketsBaseline:
    """What ``SubprocessServer(f"{bench.__file__}:baseline")`` runs: not an ASGI app but a
    server of its own (see ``serve_socket`` in ``lessons.kit.child``)."""

    @staticmethod
    def serve_socket(sock: socket.socket, on_ready: Callable[[], None]) -> None:
        asyncio.run(_serve_websockets(sock, on_ready))


baseline = _WebsocketsBaseline()


# --- measuring ---


@dataclass
class Result:
    """One scenario: every delivery's latency (seconds), and how long they took."""

    name: str
    expected: int
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0  # seconds of CPU the server processes used meanwhile
    client_cpu: float = 0.0  # and this process (the clients)
    skipped: str = ""  # why the scenario did not run ("nginx not installed")

    def per_delivery(self, seconds: float) -> float:
        return seconds / self.delivered if self.delivered else float("nan")

    @property
    def delivered(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# The kernel counts a process's CPU time in ticks (10 ms on most Linux systems): a figure
# made of fewer than COARSE ticks is too coarse to compare, and zero ticks is below it.
CPU_TICK = 1 / os.sysconf("SC_CLK_TCK")
CLIENT_TICK = time.get_clock_info("process_time").resolution
COARSE = 10
NO_NGINX = "nginx not installed (apt-get install nginx)"


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time (user + system) used so far by ``pids`` and their descendants (Linux)."""
    ticks = 0
    for process in {*pids, *(child for pid in pids for child in descendants(pid))}:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """Where a scenario's clients connect, and the server processes to charge CPU to."""

    urls: list[str]
    pids: list[int]
    ssl: ssl.SSLContext | None = None


async def _fan_out(
    target: Target, name: str, clients: int, messages: int, size: int, timeout: float, say: bool
) -> Result:
    """Connect ``clients`` (spread over the urls); client 0 publishes ``messages``."""
    urls = target.urls
    result = Result(name, clients * messages)
    sent: dict[int, float] = {}
    connected: list[FanoutClient] = []
    try:
        for n in range(clients):
            client = await FanoutClient.connect(urls[n % len(urls)], sent, messages, ssl=target.ssl)
            connected.append(client)
        if say:  # the production app greets each client first: wait for every welcome
            async with asyncio.timeout(scaled(5.0)):
                await asyncio.gather(*(client.greeted for client in connected))
        padding = "x" * max(0, size - 24)
        started, cpu = time.perf_counter(), cpu_seconds(target.pids)
        client_cpu = time.process_time()
        for seq in range(messages):
            text = f"@{seq}:{padding}"
            sent[seq] = time.perf_counter()
            await connected[0].send_text(json.dumps({"type": "say", "text": text}) if say else text)
        await asyncio.wait([client.done for client in connected], timeout=timeout)
        result.seconds = time.perf_counter() - started
        result.cpu = cpu_seconds(target.pids) - cpu
        result.client_cpu = time.process_time() - client_cpu
        result.latencies = [latency for client in connected for latency in client.latencies]
    finally:
        await asyncio.gather(*(client.close() for client in connected), return_exceptions=True)
    return result


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "websockets", "naive", "production", "corked", "redis", "caddy" or "nginx"
    stalled: bool = False


SCENARIOS = [
    Scenario("broadcast() (baseline)", "websockets"),
    Scenario("naive manager", "naive"),
    Scenario("production manager", "production"),
    Scenario("production, corked", "corked"),
    Scenario("production, 2 over Redis", "redis"),
    Scenario("broadcast() + 1 stalled", "websockets", stalled=True),
    Scenario("naive + 1 stalled", "naive", stalled=True),
    Scenario("production + 1 stalled", "production", stalled=True),
]
PROXY_SCENARIOS = [
    Scenario("production via Caddy (TLS)", "caddy"),
    Scenario("production via nginx", "nginx"),
]


def _one(server: SubprocessServer, stack: ExitStack) -> Target:
    stack.enter_context(server)
    assert server.pid is not None
    return Target([server.ws_url("/ws")], [server.pid])


def _servers(kind: str, stack: ExitStack) -> Target:
    if kind == "websockets":
        return _one(SubprocessServer(f"{Path(__file__)}:baseline"), stack)
    if kind == "naive":
        return _one(SubprocessServer(f"{Path(__file__)}:naive_app", log_level="warning"), stack)
    env = {**PRODUCTION_ENV, "QUEUE_SIZE": "100000"}
    if kind == "corked":
        return _one(SubprocessServer(CORKED_APP, env=env, log_level="warning"), stack)
    if kind in {"production", "caddy", "nginx"}:
        app = _one(SubprocessServer(PRODUCTION_APP, env=env, log_level="warning"), stack)
        if kind == "production":
            return app
        port = int(app.urls[0].rsplit(":", 1)[1].split("/")[0])
        if kind == "caddy":
            caddy = stack.enter_context(Caddy([port]))
            context = ssl.create_default_context(cafile=str(caddy.ca_file))
            return Target([caddy.ws_url("/ws")], [*app.pids, caddy.pid or 0], context)
        location = find("06").module("fix_no_upgrade").LOCATION
        nginx = stack.enter_context(Nginx([port], location))
        return Target([nginx.ws_url("/ws")], [*app.pids, nginx.pid or 0])
    redis_server = stack.enter_context(RedisServer())
    target = Target([], [redis_server.process.pid] if redis_server.process else [])
    for n in (1, 2):
        server = SubprocessServer(
            PRODUCTION_APP,
            env={**env, "BROKER_URL": redis_server.url, "INSTANCE": f"bench{n}"},
            log_level="warning",
        )
        one = _one(server, stack)
        target.urls += one.urls
        target.pids += one.pids
    return target


async def measure(
    scenarios: Sequence[Scenario] = SCENARIOS,
    *,
    proxy: bool = False,
    clients: int = 20,
    messages: int = 300,
    size: int = 16384,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Run ``scenarios`` (servers started and stopped here) and return their results.

    A coroutine, so that a notebook can ``await`` it; ``wslab bench`` runs it with
    asyncio.run. ``timeout`` per scenario defaults to ``default_timeout``. ValueError for
    arguments out of bounds (see ``check_limits``).
    """
    timeout = timeout or default_timeout(clients, messages)
    check_limits(clients, messages, size, timeout)
    results = []
    if proxy:
        scenarios = [*scenarios, *PROXY_SCENARIOS]
    for scenario in scenarios:
        if scenario.kind == "nginx" and find_nginx() is None:
            if progress:
                progress(f"{scenario.name}: skipped, nginx is not installed")
            results.append(Result(scenario.name, clients * messages, skipped=NO_NGINX))
            continue
        if progress:
            progress(scenario.name)
        with ExitStack() as stack:
            target = _servers(scenario.kind, stack)
            if scenario.stalled:
                stack.enter_context(stalled_client(target.urls[0]))
            say = scenario.kind in {"production", "corked", "redis", "caddy", "nginx"}
            results.append(
                await _fan_out(target, scenario.name, clients, messages, size, timeout, say)
            )
    return results


def check_limits(clients: int, messages: int, size: int, timeout: float) -> None:
    """ValueError, with a readable message, unless every argument is within ``LIMITS``."""
    for name, value in {"clients": clients, "messages": messages, "size": size}.items():
        if not 1 <= value <= LIMITS[name]:
            raise ValueError(f"{name} must be between 1 and {LIMITS[name]}, not {value}")
    if not 0 < timeout <= LIMITS["timeout"]:
        raise ValueError(f"timeout must be in (0, {LIMITS['timeout']}] seconds, not {timeout}")


def table(results: list[Result], width: int | None = None) -> str:
    """The results as text, ratios to the first row (the baseline): two tables within 80
    columns, or one block per scenario when ``width`` (default: the terminal's) is narrower.
    A CPU figure measured from fewer than ``COARSE`` clock ticks is marked, and explained
    below the tables."""
    width = width or shutil.get_terminal_size().columns
    lines = _narrow(results) if width < WIDE else _wide(results)
    if any(coarse(r.cpu, CPU_TICK) or coarse(r.client_cpu, CLIENT_TICK) for r in _ran(results)):
        lines += textwrap.wrap(
            f"~ measured from fewer than {COARSE} ticks of its clock (the servers' tick: "
            f"{CPU_TICK * 1000:g} ms), < from none (so at most that): too coarse to compare; "
            "more messages give more ticks",
            min(width, WIDE),
        )
    return "\n".join(lines)


WIDE = 80  # columns the wide layout takes at most


def _ran(results: list[Result]) -> list[Result]:
    return [r for r in results if not r.skipped]


def _ticks(total: float, tick: float) -> int:
    """How many ticks of its clock a CPU time is made of (a difference of two readings)."""
    return round(total / tick)


def coarse(total: float, tick: float = CPU_TICK) -> bool:
    """Whether a CPU time (seconds) is made of too few ticks of its clock to compare."""
    return _ticks(total, tick) < COARSE


def _cpu(r: Result, total: float, tick: float) -> str:
    """CPU µs per delivery; ``~`` if measured from few ticks, ``<`` (an upper bound) if none."""
    if not r.delivered:
        return "-"
    if _ticks(total, tick) == 0:
        return f"<{tick / r.delivered * 1e6:.3g}"
    figure = f"{r.per_delivery(total) * 1e6:.1f}"
    return f"~{figure}" if coarse(total, tick) else figure


def _figures(r: Result, base: Result) -> dict[str, str]:
    p50, p99 = r.percentile(50), r.percentile(99)
    return {
        "done": f"{100 * r.delivered / r.expected:.0f}%" if r.expected else "-",
        "rate": f"{r.per_second:.0f}",
        "rate×": _ratio(r.per_second, base.per_second),
        "p50": f"{p50 * 1000:.1f}",
        "p50×": _ratio(p50, base.percentile(50)),
        "p99": f"{p99 * 1000:.1f}",
        "p99×": _ratio(p99, base.percentile(99)),
        "cpu": _cpu(r, r.cpu, CPU_TICK),
        "cpu×": _ratio(r.per_delivery(r.cpu), base.per_delivery(base.cpu))
        if _ticks(r.cpu, CPU_TICK) and _ticks(base.cpu, CPU_TICK)
        else "-",
        "clients": _cpu(r, r.client_cpu, CLIENT_TICK),
    }


def _wide(results: list[Result]) -> list[str]:
    """Two tables, deliveries then CPU, each row within ``WIDE`` columns."""
    base = results[0]
    name = max(len("scenario"), *(len(r.name) for r in results))
    expected = max(r.expected for r in results)
    tables: list[tuple[str, str, Callable[[dict[str, str]], str]]] = [
        (
            f"delivered: of {expected} deliveries each; latency: publish to receive, same clock",
            f"{'done':>5} {'deliv/s':>8} {'×base':>6} {'p50 ms':>8} {'×base':>6} "
            f"{'p99 ms':>8} {'×base':>6}",
            lambda f: (
                f"{f['done']:>5} {f['rate']:>8} {f['rate×']:>6} {f['p50']:>8} "
                f"{f['p50×']:>6} {f['p99']:>8} {f['p99×']:>6}"
            ),
        ),
        (
            "\nCPU time per delivery: servers (app, Redis, proxy) and clients (this process)",
            f"{'servers µs':>11} {'×base':>6} {'clients µs':>11}",
            lambda f: f"{f['cpu']:>11} {f['cpu×']:>6} {f['clients']:>11}",
        ),
    ]
    lines = []
    for intro, header, row in tables:
        lines += [*intro.splitlines(), f"{'scenario':<{name}} {header}"]
        for r in results:
            body = f"skipped: {r.skipped}" if r.skipped else row(_figures(r, base))
            lines.append(f"{r.name:<{name}} {body}")
    return lines


def _narrow(results: list[Result]) -> list[str]:
    base = results[0]
    lines = []
    for r in results:
        lines.append(r.name)
        if r.skipped:
            lines.append(f"  skipped: {r.skipped}")
            continue
        f = _figures(r, base)
        lines += [
            f"  delivered {f['done']}, {f['rate']}/s (×base {f['rate×']})",
            f"  p50 {f['p50']} ms (×{f['p50×']}), p99 {f['p99']} ms (×{f['p99×']})",
            f"  CPU/delivery: servers {f['cpu']} µs (×{f['cpu×']}),",
            f"    clients {f['clients']} µs",
        ]
    return lines


def _ratio(value: float, base: float) -> str:
    if not base or value != value:
        return "-"
    ratio = value / base
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}" if ratio < 1000 else f"{ratio:.0f}"


def plot(results: list[Result], path: Path, title: str) -> None:
    """Draw the results into ``path`` (PNG, SVG or PDF, by its suffix): deliveries per
    second, latency (p50 and p99) and CPU per delivery, one bar per scenario that ran."""
    from lessons.kit.show import pyplot

    pyplot()  # matplotlib, imported quietly
    from matplotlib.figure import Figure

    ran = _ran(results)
    names = [r.name for r in ran]
    figure = Figure(figsize=(12, 0.45 * len(ran) + 1.8), layout="constrained")
    rate, latency, cpu = figure.subplots(1, 3, sharey=True)
    rate.barh(names, [r.per_second for r in ran])
    rate.set(xlabel="deliveries per second", title="Rate")
    rate.invert_yaxis()
    for p, shade in ((99, 0.45), (50, 1.0)):
        latency.barh(names, [r.percentile(p) * 1000 for r in ran], alpha=shade, label=f"p{p}")
    latency.set(xlabel="ms, publish to receive", title="Latency", xscale="log")
    latency.legend(fontsize="small")
    servers = [r.per_delivery(r.cpu) * 1e6 for r in ran]
    cpu.barh(names, servers, label="servers")
    clients = [r.per_delivery(r.client_cpu) * 1e6 for r in ran]
    cpu.barh(names, clients, left=servers, label="clients")
    few = any(coarse(r.cpu) for r in ran)
    cpu.set(xlabel="µs of CPU per delivery", title="CPU" + " (coarse: few clock ticks)" * few)
    cpu.legend(fontsize="small")
    skipped = [f"{r.name}: skipped, {r.skipped}" for r in results if r.skipped]
    figure.suptitle("\n".join([title, *skipped]), fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
