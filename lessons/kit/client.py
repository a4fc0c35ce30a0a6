"""A live WebSocket client for notebook cells and tests, with a readable transcript.

Every wait has a timeout. ``receive_nothing`` asserts that no message arrives within a
window, the only honest way to show that something did *not* happen.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lessons.kit.timing import scaled
from lessons.kit.wire import raw_socket, upgrade

Message = str | bytes


def _show(data: Message, limit: int = 80) -> str:
    kind = "text" if isinstance(data, str) else "binary"
    shown = repr(data) if len(data) <= limit else f"{data[:limit]!r}… ({len(data)} long)"
    return f"{kind} {shown}"


class LiveClient:
    """A ``websockets`` client that records what it sends and receives.

    >>> async with LiveClient(server.ws_url("/ws/echo")) as client:
    ...     await client.send("hi")
    ...     assert await client.receive() == "Echo: hi"
    """

    def __init__(
        self, url: str, *, name: str = "client", echo: bool = False, **connect_options: Any
    ) -> None:
        self.url = url
        self.name = name
        self.echo = echo
        self.connect_options = connect_options
        self.transcript: list[str] = []
        self.ws: ClientConnection | None = None
        self._started = time.perf_counter()
        self._close_logged = False

    def _log(self, arrow: str, text: str) -> None:
        line = f"{time.perf_counter() - self._started:7.3f}s {self.name} {arrow} {text}"
        self.transcript.append(line)
        if self.echo:
            print(line)

    @property
    def connection(self) -> ClientConnection:
        if self.ws is None:
            raise RuntimeError("not connected: use `async with LiveClient(...)` or connect()")
        return self.ws

    async def connect(self, timeout: float = 5.0) -> Self:
        """Open the connection (the HTTP upgrade handshake)."""
        self._started = time.perf_counter()
        self.ws = await connect(self.url, open_timeout=scaled(timeout), **self.connect_options)
        self._log("⇄", f"connected to {self.url}")
        return self

    async def send(self, data: Message) -> None:
        await self.connection.send(data)
        self._log("→", _show(data))

    async def send_json(self, obj: Any) -> None:
        await self.send(json.dumps(obj))

    async def receive(self, timeout: float = 5.0) -> Message:
        """The next message; TimeoutError if none within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(scaled(timeout)):
                data = await self.connection.recv()
        except TimeoutError:
            self._log("…", f"nothing within {timeout}s")
            raise TimeoutError(f"{self.name}: no message within {timeout}s") from None
        except ConnectionClosed:
            self._log_close()
            raise
        self._log("←", _show(data))
        return data

    async def receive_json(self, timeout: float = 5.0) -> Any:
        data = await self.receive(timeout)
        return json.loads(data)

    async def receive_nothing(self, within: float = 0.3) -> None:
        """Assert that no message arrives within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                data = await self.connection.recv()
        except TimeoutError:
            self._log("∅", f"nothing within {within}s, as expected")
            return
        except ConnectionClosed:
            self._log_close()
            raise AssertionError(f"{self.name}: expected silence, the connection closed") from None
        self._log("←", _show(data))
        raise AssertionError(f"{self.name}: expected nothing within {within}s, got {data!r}")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from this side with ``code`` and ``reason``.

        Messages still queued unread are read and dropped meanwhile (and counted in the
        transcript): a client whose queue is full reads nothing more, so it would never
        see the server's answering close frame, wait its whole close timeout and end with
        1006, which looks like a server that hangs.
        """
        ws = self.connection
        closing = asyncio.ensure_future(ws.close(code, reason))
        dropped = 0
        try:
            while not closing.done():
                reading = asyncio.ensure_future(ws.recv())
                await asyncio.wait({closing, reading}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()  # safe: websockets loses no data on a cancelled recv()
                    break
                if reading.exception() is not None:
                    break
                dropped += 1
        finally:
            await closing
        self._close_logged = True
        unread = f" ({dropped} unread messages dropped)" if dropped else ""
        self._log("✕", f"closed by {self.name}: {code} {reason!r}{unread}")

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Wait until the server closes; return its close code and reason (1006: no frame)."""
        try:
            async with asyncio.timeout(scaled(timeout)):
                while True:
                    data = await self.connection.recv()
                    self._log("←", _show(data))
        except ConnectionClosed:
            self._log_close()
        except TimeoutError:
            raise TimeoutError(f"{self.name}: still open after {timeout}s") from None
        return self.close_code, self.close_reason

    def _log_close(self) -> None:
        if not self._close_logged:
            self._close_logged = True
            self._log("✕", f"closed by the server: {self.close_code} {self.close_reason!r}")

    @property
    def close_code(self) -> int | None:
        """The code of the close frame the server sent, 1006 if none came, None while open."""
        code = self.connection.close_code
        return None if code is None else int(code)

    @property
    def close_reason(self) -> str | None:
        return self.connection.close_reason

    def print_transcript(self) -> None:
        print("\n".join(self.transcript))

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        if self.ws is not None and self.ws.close_code is None:
            await self.close()


@contextmanager
def stalled_client(url: str, timeout: float = 5.0) -> Iterator[socket.socket]:
    """A raw client that completes the WebSocket handshake on ``url``, then never reads:
    the server's send buffers fill up, as with a frozen browser tab. Closed on exit."""
    with raw_socket(url, rcvbuf=4096, timeout=timeout) as sock:  # a small buffer stalls sooner
        upgrade(sock, url)
        yield sock


async def handshake_status(url: str, timeout: float = 5.0, **connect_options: Any) -> int:
    """The HTTP status a server answers a WebSocket handshake with: 101 if accepted."""
    try:
        async with connect(url, open_timeout=scaled(timeout), **connect_options):
            return 101
    except InvalidStatus as rejected:
        return rejected.response.status_code
