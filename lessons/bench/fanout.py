"""The measuring clients of ``wslab bench``: cheap enough that the server is what is measured.

A library client (``websockets``) parses each frame into an object, checks its UTF-8,
decodes it and wakes a waiting task per message. Five hundred of them in one Python process,
on the same cores as the server, spend more CPU per delivery than the server does, so
deliveries per second would measure the clients. A ``FanoutClient`` is an asyncio protocol
that does the upgrade handshake itself, then cuts the server's frames (never masked) straight
out of the bytes received, many per read, and looks only for the ``@<sequence number>:``
header at the start of each text message. It answers pings, sends masked frames (the
publisher's messages, pongs, its close frame) and closes with a close frame before the TCP
connection, so servers see a clean close. Works over TLS (``ssl=``) as well.

>>> sent: dict[int, float] = {}
>>> client = await FanoutClient.connect(url, sent, expected=300)
>>> sent[0] = time.perf_counter()
>>> await client.send_text("@0:hello")
>>> await client.done            # 300 published messages received; latencies in .latencies
>>> await client.close()
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import urllib.parse
from collections.abc import Mapping

from websockets.frames import Close, Frame, Opcode

from lessons.kit.timing import scaled
from lessons.kit.wire import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    accept_key,
    new_key,
    status_of,
    upgrade_request,
)

HEADER = re.compile(rb"@(\d+):")  # a published payload starts with @<sequence number>:
HEADER_WITHIN = 200  # bytes: the header is near the start (inside a JSON envelope or not)
MAX_HEAD = 65_536  # bytes of HTTP response head before the handshake is refused
# Bytes read at once, into one buffer per client, reused: asyncio's plain protocols read
# into a fresh 256 KiB bytes object each time, which costs more than the read itself.
READ_SIZE = 65_536

ServerFrame = tuple[int, bool, bytes | bytearray]  # opcode, FIN, payload


def parse_frames(data: bytes | bytearray, start: int, end: int) -> tuple[list[ServerFrame], int]:
    """The complete server frames in ``data[start:end]``, and where the first incomplete
    one starts (``end`` if there is none). ValueError for a masked frame: servers never mask.
    """
    frames: list[ServerFrame] = []
    while end - start >= 2:
        first, length = data[start], data[start + 1]
        if length & 0x80:
            raise ValueError("a masked frame from the server")
        head = start + 2
        if length == 126:
            if end - head < 2:
                break
            length, head = int.from_bytes(data[head : head + 2], "big"), head + 2
        elif length == 127:
            if end - head < 8:
                break
            length, head = int.from_bytes(data[head : head + 8], "big"), head + 8
        if end - head < length:
            break
        frames.append((first & 0x0F, bool(first & 0x80), data[head : head + length]))
        start = head + length
    return frames, start


class FanoutClient(asyncio.BufferedProtocol):
    """One client. It records the latency (now minus ``sent[n]``, ``time.perf_counter``) of
    each text message whose header ``n`` is in ``sent``, until it has ``expected`` of them.

    ``opened``: the server accepted the handshake. ``greeted``: the first text message came.
    ``done``: ``expected`` latencies are in ``latencies``, or the connection ended first.
    ``closed``: the TCP connection ended.
    """

    def __init__(self, url: str, sent: Mapping[int, float], expected: int) -> None:
        loop = asyncio.get_running_loop()
        self.url, self.sent, self.expected = url, sent, expected
        self.latencies: list[float] = []
        self.opened, self.greeted = loop.create_future(), loop.create_future()
        self.done, self.closed = loop.create_future(), loop.create_future()
        self.key = new_key()
        self.transport: asyncio.Transport | None = None
        self.data = bytearray(READ_SIZE)
        self.held = 0  # bytes at the start of data: the handshake's head, or a frame's start
        self.first_fragment: bytes | bytearray | None = None  # of a fragmented text message
        self.close_sent = False
        self.writable = asyncio.Event()
        self.writable.set()

    @classmethod
    async def connect(
        cls,
        url: str,
        sent: Mapping[int, float],
        expected: int,
        *,
        ssl: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> FanoutClient:
        """Open a connection to ``url`` (``ws://`` or, with ``ssl``, ``wss://``) and wait for
        the 101; ConnectionError if the server refuses the handshake."""
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(scaled(timeout)):
            _, client = await loop.create_connection(
                lambda: cls(url, sent, expected), parts.hostname, port, ssl=ssl
            )
            try:
                await client.opened
            except BaseException:
                client.abort()
                raise
        return client

    # --- asyncio.BufferedProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(upgrade_request(self.url, self.key).encode())

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.data) - self.held < READ_SIZE // 2:  # a big frame: room for more of it
            self.data.extend(bytes(len(self.data)))
        return memoryview(self.data)[self.held :]

    def buffer_updated(self, nbytes: int) -> None:
        now = time.perf_counter()  # one reading for every message in this read
        data, end = self.data, self.held + nbytes
        start = 0 if self.opened.done() else self._handshake(end)
        if start is None:  # the response head is still arriving
            self.held = end
            return
        try:
            frames, stop = parse_frames(data, start, end)
        except ValueError:
            self.abort()
            return
        self.held = end - stop
        data[: self.held] = data[stop:end]  # keep the start of a frame still arriving
        for opcode, fin, payload in frames:
            if opcode == TEXT and fin:  # a whole text message: nearly every frame
                self._message(payload, now)
            elif opcode == TEXT:
                self.first_fragment = payload  # it holds the header
            elif opcode == CONTINUATION and fin and self.first_fragment is not None:
                self._message(self.first_fragment, now)
                self.first_fragment = None
            elif opcode == BINARY:
                self.first_fragment = None
            elif opcode == PING:
                self._write(Frame(Opcode.PONG, bytes(payload)))
            elif opcode == CLOSE:
                self._close_frame(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            ended = ConnectionError(f"{self.url}: the connection ended during the handshake")
            self.opened.set_exception(ended)
        for future in (self.done, self.closed):  # nothing more will come
            if not future.done():
                future.set_result(None)
        self.writable.set()  # nor wait to send

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # --- what the benchmark calls ---

    async def send_text(self, text: str) -> None:
        """Send one masked text frame; wait while the transport's buffer is full."""
        self._write(Frame(Opcode.TEXT, text.encode()))
        await self.writable.wait()

    async def close(self, timeout: float = 2.0) -> None:
        """Send a close frame (1000), read on until the server's answers it, then close the
        TCP connection; reset it if the server has not answered within ``timeout`` s."""
        if not self.close_sent:
            self.close_sent = True
            self._write(Frame(Opcode.CLOSE, Close(1000, "").serialize()))
        try:
            async with asyncio.timeout(scaled(timeout)):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- inside ---

    def _handshake(self, end: int) -> int | None:
        """Once ``data[:end]`` holds the response head, settle ``opened`` and return where
        the frames start; None while the head is still arriving, or if it is a refusal."""
        head_end = self.data.find(b"\r\n\r\n", 0, end)
        if head_end < 0 and end < MAX_HEAD:
            return None
        head = bytes(self.data[: max(head_end, 0)])
        fields = (line.partition(b":") for line in head.split(b"\r\n")[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        accept = headers.get(b"sec-websocket-accept", b"").decode()
        if head_end < 0 or status_of(head) != 101 or accept != accept_key(self.key):
            self.opened.set_exception(ConnectionError(f"{self.url} refused: {head[:200]!r}"))
            self.abort()
            return None
        self.opened.set_result(None)
        return head_end + 4

    def _message(self, payload: bytes | bytearray, now: float) -> None:
        if not self.greeted.done():
            self.greeted.set_result(None)
        if self.done.done():
            return
        match = HEADER.search(payload, 0, HEADER_WITHIN)
        if match and (seq := int(match[1])) in self.sent:
            self.latencies.append(now - self.sent[seq])
            if len(self.latencies) == self.expected:
                self.done.set_result(None)

    def _close_frame(self, payload: bytes | bytearray) -> None:
        """The server's close frame: answer it (echoing its code) unless this side started,
        then close the TCP connection."""
        if not self.close_sent:
            self.close_sent = True
            self._write(Frame(Opcode.CLOSE, bytes(payload[:2])))
        if self.transport is not None:
            self.transport.close()

    def _write(self, frame: Frame) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame.serialize(mask=True))
