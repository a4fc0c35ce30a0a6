"""uvicorn's WebSocket implementations measured side by side, from outside, in one run.

For each of ``websockets-sansio`` (uvicorn's default when ``websockets`` is installed), the
legacy ``websockets`` implementation and ``wsproto``, one server process serves the same
probe app, and clients on loopback try what hostile or unlucky clients do: an oversized
handshake, a reader that stops, a peer that stops answering, a close frame in the middle of
a fragmented message (Autobahn case 7.1.5), a message over the size limit. Then idle
connections (memory per connection) and an echo round trip. Every probe is bounded in time;
the answer "nothing within N s" is a result, not a hang.

``measure()`` returns the results, ``table()`` shows them; ``wslab bench --implementations``
prints that table. The last column is the kit's choice (``lessons.kit.server.SERVER_SETTINGS``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from lessons.kit import wire
from lessons.kit.leaks import holds_peer, rss
from lessons.kit.server import SERVER_SETTINGS, SubprocessServer
from lessons.kit.timing import scaled

KIT_NAME = "sansio, kit's socket"
# uvicorn's three implementations as they come, and the kit's choice: the default on a
# socket with a short TCP_USER_TIMEOUT (lessons.kit.server.bind_socket).
IMPLEMENTATIONS = ("websockets-sansio", "websockets", "wsproto", KIT_NAME)
# seconds of TCP_USER_TIMEOUT for the run (the kit's servers use
# lessons.kit.server.USER_TIMEOUT)
KIT_USER_TIMEOUT = 2.0
OVERSIZED = 10_000  # bytes of query string or header: over websockets' 8 KiB line limit,
# under the 16 KiB at which uvicorn's HTTP parser (h11) refuses a head arriving in pieces
PING_INTERVAL = 0.5  # keepalive for the dead-peer probe, seconds
GIVE_UP = 0.5  # the probe app stops waiting for a slow reader after this, seconds
WINDOW = 4.0  # how long each probe waits for the server to answer or let go, seconds
IDLE = 200  # idle connections for the memory probe
MAX_SIZE = 65_536  # the probe server's message size limit, bytes

# --- the probe app: an echo, and a flood that gives up on a reader that stops -----------

probe_app = FastAPI()


@probe_app.websocket("/ws/echo")
async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@probe_app.websocket("/ws/flood")
async def _flood(websocket: WebSocket) -> None:
    """Send 64 KiB messages until one waits more than GIVE_UP s, then close with 1013 (as a
    production hub drops a slow consumer), waiting at most GIVE_UP s for that close too."""
    await websocket.accept()
    chunk = "x" * 65_536
    try:
        while True:
            async with asyncio.timeout(GIVE_UP):
                await websocket.send_text(chunk)
    except TimeoutError:
        try:
            async with asyncio.timeout(GIVE_UP):
                await websocket.close(1013, "slow consumer")
        except TimeoutError:
            pass
    except WebSocketDisconnect:
        pass


# --- the results --------------------------------------------------------------------------


@dataclass
class Measurement:
    """What clients observed of one implementation (None: nothing within the window)."""

    implementation: str
    long_query: int | None = None  # HTTP status answered to a 10 kB query string
    long_header: int | None = None  # ... and to a 10 kB header
    query_closed: bool = False  # the server closed the first oversized connection
    header_closed: bool = False  # ... and the second
    unfinished: int | None = None  # HTTP status answered to half a handshake, then silence
    unfinished_released: float | None = None  # seconds until the server closed that one
    slow_reader_released: float | None = None  # seconds until it let go of a stalled reader
    slow_reader_code: int | None = None  # the close code that reader finally read
    dead_peer_released: float | None = None  # seconds until it let go of a silent peer
    close_mid_message: int | None = None  # close code answered in Autobahn case 7.1.5
    too_big: int | None = None  # close code answered to a message over the limit
    memory_per_idle: float = 0.0  # bytes of server memory per idle connection
    echo_round_trip: float = 0.0  # median seconds of a small echo
    errors: list[str] = field(default_factory=list)

    @property
    def oversized_released(self) -> bool:
        """The server closed both oversized connections."""
        return self.query_closed and self.header_closed


def _released(pid: int, port: int, timeout: float) -> float | None:
    """Seconds until process ``pid`` holds no socket to client ``port`` (None: still held)."""
    started = time.monotonic()
    deadline = started + scaled(timeout)
    while time.monotonic() < deadline:
        if not holds_peer(pid, port):
            return time.monotonic() - started
        time.sleep(0.02)  # /proc offers nothing to wait on
    return None


def _oversized(url: str, request: bytes) -> tuple[int | None, bool]:
    """The HTTP status answered to ``request``, and whether the server then closed."""
    with wire.raw_socket(url) as sock:
        sock.sendall(request)
        status = wire.status_of(wire.read_head(sock, 2.0))
        return status, wire.closed_by_peer(sock, 2.0)


def _long_query(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    request = wire.upgrade_request(f"{url}?token={'a' * OVERSIZED}").encode()
    result.long_query, result.query_closed = _oversized(url, request)


def _long_header(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    request = wire.upgrade_request(url, headers={"Cookie": "a=" + "b" * OVERSIZED}).encode()
    result.long_header, result.header_closed = _oversized(url, request)


def _unfinished(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    with wire.raw_socket(url) as sock:
        sock.sendall(wire.upgrade_request(url).encode()[:40])  # half a request line, then nothing
        started = time.monotonic()
        result.unfinished = wire.status_of(wire.read_head(sock, WINDOW))
        if wire.closed_by_peer(sock, max(0.0, WINDOW - (time.monotonic() - started))):
            result.unfinished_released = time.monotonic() - started


def _slow_reader(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/flood")
    assert server.pid is not None
    with wire.raw_socket(url, rcvbuf=4096) as sock:
        wire.upgrade(sock, url)
        port = sock.getsockname()[1]
        result.slow_reader_released = _released(server.pid, port, WINDOW)
        result.slow_reader_code = wire.read_until_close(sock, 2.0)


def _dead_peer(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    assert server.pid is not None
    with wire.raw_socket(url) as sock:
        wire.upgrade(sock, url)  # then never reads, never answers a ping
        result.dead_peer_released = _released(server.pid, sock.getsockname()[1], WINDOW)


def _close_mid_message(server: SubprocessServer, result: Measurement) -> None:
    """Autobahn 7.1.5: a first fragment, a close frame, then the last fragment. The server
    must answer the close with 1000 and ignore what follows."""
    url = server.ws_url("/ws/echo")
    with wire.raw_socket(url) as sock:
        wire.upgrade(sock, url)
        sock.sendall(
            wire.frame(wire.TEXT, b"fragment1", fin=False)
            + wire.close_frame(1000)
            + wire.frame(wire.CONTINUATION, b"fragment2")
        )
        result.close_mid_message = wire.read_until_close(sock, 2.0)


def _too_big(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    with wire.raw_socket(url) as sock:
        wire.upgrade(sock, url)
        sock.sendall(wire.frame(wire.TEXT, b"x" * (4 * MAX_SIZE)))
        result.too_big = wire.read_until_close(sock, 2.0)


def _memory(server: SubprocessServer, result: Measurement) -> None:
    url = server.ws_url("/ws/echo")
    assert server.pid is not None
    before = rss(server.pid)
    with ExitStack() as stack:
        for _ in range(IDLE):
            wire.upgrade(stack.enter_context(wire.raw_socket(url)), url)
        result.memory_per_idle = (rss(server.pid) - before) / IDLE


async def _echo_round_trip(server: SubprocessServer, result: Measurement) -> None:
    async with connect(server.ws_url("/ws/echo"), open_timeout=scaled(5)) as ws:
        times = []
        for n in range(300):
            started = time.perf_counter()
            await ws.send(f"ping {n}")
            await asyncio.wait_for(ws.recv(), scaled(2))
            times.append(time.perf_counter() - started)
    result.echo_round_trip = statistics.median(times)


PROBES = (
    _long_query,
    _long_header,
    _unfinished,
    _slow_reader,
    _dead_peer,
    _close_mid_message,
    _too_big,
)


def measure_one(implementation: str, **settings: Any) -> Measurement:
    """Serve the probe app with ``implementation`` (one of ``IMPLEMENTATIONS``; uvicorn
    options in ``settings`` override) in its own process and run every probe against it."""
    result = Measurement(implementation)
    kit = implementation == KIT_NAME
    options = {
        **(SERVER_SETTINGS if kit else {"ws": implementation, "http": "h11"}),
        "user_timeout": KIT_USER_TIMEOUT if kit else None,
        "ws_max_size": MAX_SIZE,
        "ws_ping_interval": PING_INTERVAL,
        "ws_ping_timeout": PING_INTERVAL,
        **settings,
    }
    target = f"{Path(__file__)}:probe_app"
    server = SubprocessServer(target, log_level="critical", **options)
    try:
        server.start()
    except RuntimeError as exc:  # e.g. wsproto not installed
        result.errors.append(f"starting: {str(exc).splitlines()[-1]}")
        return result

    def run(probe: Callable[[SubprocessServer, Measurement], None]) -> None:
        try:
            probe(server, result)
        except (OSError, ConnectionError) as exc:
            result.errors.append(f"{probe.__name__.strip('_')}: {exc}")

    try:
        # Each probe has its own sockets and deadlines: they wait side by side. Then the
        # memory probe and the round trip, alone, as they measure the server itself.
        with ThreadPoolExecutor(len(PROBES)) as pool:
            list(pool.map(run, PROBES))
        run(_memory)
        asyncio.run(_echo_round_trip(server, result))
    finally:
        server.stop()
    return result


def measure(
    implementations: Sequence[str] = IMPLEMENTATIONS,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> list[Measurement]:
    """Every implementation in turn, in one run (each in its own server process)."""
    results = []
    for implementation in implementations:
        if progress:
            progress(implementation)
        results.append(measure_one(implementation, **settings))
    return results


def _show(value: object, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


ROWS = [
    ("10 kB query string: HTTP status", lambda m: _show(m.long_query)),
    ("10 kB header: HTTP status", lambda m: _show(m.long_header)),
    ("oversized handshakes: socket closed", lambda m: _show(m.oversized_released)),
    ("half a handshake: HTTP status", lambda m: _show(m.unfinished)),
    (f"half a handshake: closed after (s, max {WINDOW:g})", lambda m: _show(m.unfinished_released)),
    (f"stalled reader released after (s, max {WINDOW:g})", lambda m: _show(m.slow_reader_released)),
    ("close code the stalled reader reads", lambda m: _show(m.slow_reader_code)),
    (f"silent peer released after (s, max {WINDOW:g})", lambda m: _show(m.dead_peer_released)),
    ("Autobahn 7.1.5: close code answered", lambda m: _show(m.close_mid_message)),
    ("message over the limit: close code", lambda m: _show(m.too_big)),
    ("memory per idle connection (kB)", lambda m: f"{m.memory_per_idle / 1024:.1f}"),
    ("echo round trip, median (ms)", lambda m: f"{m.echo_round_trip * 1000:.3f}"),
]


def table(results: list[Measurement]) -> str:
    """The results as a text table, one column per implementation."""
    width = max(len(name) for name, _ in ROWS)
    lines = [f"{'':<{width}}  " + "  ".join(f"{m.implementation:>18}" for m in results)]
    for name, cell in ROWS:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(m):>18}" for m in results))
    for m in results:
        lines += [f"{m.implementation}: error in {error}" for error in m.errors]
    return "\n".join(lines)
