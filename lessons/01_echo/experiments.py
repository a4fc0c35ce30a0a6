"""Lesson 01's experiments: four ways to get a server's messages, measured side by side:
how late, and how many bytes.

The lesson's feed makes message n fall due at ``n * period`` seconds after 1970.
``compare_transports`` reads the same messages four ways at once: an HTTP request per
message, polling at an interval, one WebSocket, and Server-Sent Events. Each reader talks
to the server through its own ``Relay``, a loopback TCP proxy that counts every byte it
forwards in each direction (requests, headers, handshakes and close frames included), so
the bytes are measured on the wire, not computed from a model of the protocol.

Read top to bottom: the four readers, the comparison that runs them at once, its plot,
then the relay. Last, ``command_line_client``: the client that ships with ``websockets``,
typed into as a person would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
from websockets.asyncio.client import connect

from lessons.kit.server import LiveServer
from lessons.kit.show import pyplot
from lessons.kit.timing import scaled


@dataclass
class Reading:
    """One way of reading the feed: how late each message came, what it cost on the wire."""

    name: str
    late: list[float] = field(default_factory=list)  # seconds after each message fell due
    requests: int = 0  # HTTP requests, or WebSocket handshakes
    wasted: int = 0  # requests answered with nothing new
    sent: int = 0  # bytes, client to server
    received: int = 0  # bytes, server to client

    @property
    def median_ms(self) -> float:
        return statistics.median(self.late) * 1000

    @property
    def worst_ms(self) -> float:
        return max(self.late) * 1000


async def _by_request(reading: Reading, base: str, numbers: range) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=scaled(10)) as http:
        for n in numbers:
            message = (await http.get("/feed/wait", params={"n": n})).raise_for_status().json()
            reading.late.append(time.time() - message["due"])
            reading.requests += 1


async def _by_polling(reading: Reading, base: str, numbers: range, every: float) -> None:
    after = numbers.start - 1
    async with httpx.AsyncClient(base_url=base, timeout=scaled(10)) as http:
        while after < numbers[-1]:
            await asyncio.sleep(every)  # the polling interval: the client cannot know sooner
            batch = (await http.get("/feed/poll", params={"after": after})).raise_for_status()
            reading.requests += 1
            reading.wasted += not batch.json()
            now = time.time()
            for message in batch.json():
                if message["n"] in numbers:
                    reading.late.append(now - message["due"])
                after = max(after, message["n"])


async def _by_websocket(reading: Reading, url: str, numbers: range) -> None:
    query = f"?n={numbers.start}&count={len(numbers)}"
    async with connect(url + query, open_timeout=scaled(10)) as websocket:
        reading.requests += 1
        async for text in websocket:
            reading.late.append(time.time() - json.loads(text)["due"])


async def _by_events(reading: Reading, base: str, numbers: range) -> None:
    params = {"n": numbers.start, "count": len(numbers)}
    async with (
        httpx.AsyncClient(base_url=base, timeout=scaled(10)) as http,
        http.stream("GET", "/sse/feed", params=params) as response,
    ):
        reading.requests += 1
        async for line in response.raise_for_status().aiter_lines():
            if line.startswith("data:"):
                reading.late.append(time.time() - json.loads(line[5:])["due"])


async def compare_transports(
    server: LiveServer, *, period: float, messages: int = 100, poll_every: float = 0.05
) -> list[Reading]:
    """Read the same ``messages`` of lesson 01's feed four ways at once; print a table.

    The first message falls due 0.3 s from now, so that every reader is connected by then.
    """
    first = int(time.time() / period) + round(0.3 / period)
    numbers = range(first, first + messages)
    readings = [
        Reading("HTTP, a request per message"),
        Reading(f"polling every {poll_every * 1000:.0f} ms"),
        Reading("one WebSocket"),
        Reading("Server-Sent Events"),
    ]
    async with contextlib.AsyncExitStack() as stack:
        relays = [
            await stack.enter_async_context(Relay(server.host, server.port)) for _ in readings
        ]
        base = [f"http://{relay.host}:{relay.port}" for relay in relays]
        async with asyncio.timeout(scaled(30)):
            await asyncio.gather(
                _by_request(readings[0], base[0], numbers),
                _by_polling(readings[1], base[1], numbers, poll_every),
                _by_websocket(
                    readings[2], f"ws://{relays[2].host}:{relays[2].port}/ws/feed", numbers
                ),
                _by_events(readings[3], base[3], numbers),
            )
    for reading, relay in zip(readings, relays, strict=True):
        reading.sent, reading.received = relay.sent, relay.received
    print(
        f"{'':<30}{'median late':>12}{'worst late':>12}{'requests':>10}"
        f"{'bytes sent':>12}{'received':>10}"
    )
    for r in readings:
        print(
            f"{r.name:<30}{r.median_ms:>9.1f} ms{r.worst_ms:>9.1f} ms{r.requests:>10}"
            f"{r.sent:>12}{r.received:>10}"
        )
    ws, polled, asked = readings[2], readings[1], readings[0]
    print(
        f"\nYour run: the WebSocket's messages came a median {ws.median_ms:.1f} ms late, "
        f"polling's {polled.median_ms:.1f} ms;\npolling made {polled.requests} requests, "
        f"{polled.wasted} of them for nothing; a request per message moved "
        f"{(asked.sent + asked.received) / 1000:.1f} kB, the WebSocket "
        f"{(ws.sent + ws.received) / 1000:.1f} kB."
    )
    return readings


def plot_transports(readings: list[Reading]) -> None:
    """Draw a comparison below the cell: how late each message came, and the bytes each way."""
    from IPython.display import display

    plt = pyplot()
    figure, (lateness, volume) = plt.subplots(1, 2, figsize=(11, 3.6))
    for reading in readings:
        lateness.plot([max(s * 1000, 0.01) for s in reading.late], label=reading.name)
    lateness.set(yscale="log", xlabel="message", ylabel="ms after it fell due", title="How late")
    lateness.legend(fontsize="small")
    names = [r.name for r in readings]
    sent = [r.sent / 1000 for r in readings]
    volume.barh(names, sent, label="sent")
    volume.barh(names, [r.received / 1000 for r in readings], left=sent, label="received")
    volume.set(xlabel="kB on the wire", title=f"Bytes for {len(readings[0].late)} messages")
    volume.invert_yaxis()
    volume.legend(fontsize="small")
    figure.tight_layout()
    display(figure)
    plt.close(figure)


class Relay:
    """A TCP proxy on 127.0.0.1 that forwards to ``host:port`` and counts the bytes.

    >>> async with Relay(server.host, server.port) as relay:
    ...     ...  # talk to relay.host:relay.port instead of the server
    ... relay.sent, relay.received  # bytes client to server, server to client
    """

    host = "127.0.0.1"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.sent = 0
        self.received = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._relay, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()  # each pump then reads the end of its stream and returns
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(client_out)
        self.connections += 1
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
            self._writers.add(server_out)
            await asyncio.gather(
                self._pump(client_in, server_out, upstream=True),
                self._pump(server_in, client_out, upstream=False),
            )
            server_out.close()
        except OSError:
            pass  # the server refused the connection: the client sees it closed
        finally:
            client_out.close()

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        """Copy ``source`` to ``sink`` until end of stream, counting; then pass the EOF on."""
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if upstream:
                    self.sent += len(data)
                else:
                    self.received += len(data)
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()


_TERMINAL_CODES = re.compile(r"\x1b(\[[0-9;]*[A-Za-z]|[78])")


async def command_line_client(url: str, *lines: str, timeout: float = 10.0) -> str:
    """What ``python -m websockets URL`` (the client that ships with websockets) prints when
    ``lines`` are typed into it, one message each: input ends once a reply has come for each
    (the client closes at the end of its input, with or without the replies). Terminal codes
    are left out; ``<`` marks a message received."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "websockets",
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdin and process.stdout
    printed = b""
    try:
        async with asyncio.timeout(scaled(timeout)):
            for sent, line in enumerate(lines, start=1):
                process.stdin.write(f"{line}\n".encode())
                while printed.count(b"< ") < sent:
                    chunk = await process.stdout.read(4096)
                    if not chunk:
                        break
                    printed += chunk
            process.stdin.close()
            printed += await process.stdout.read()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = _TERMINAL_CODES.sub("", printed.decode()).replace("> ", "")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
