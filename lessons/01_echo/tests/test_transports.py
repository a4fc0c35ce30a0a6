"""The notebook's comparison: the relay counts real bytes, and every reader gets the feed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from lessons import find
from lessons.kit import LiveServer

LESSON = find("01_echo")
EXPERIMENTS = LESSON.module("experiments")
Reading, Relay = EXPERIMENTS.Reading, EXPERIMENTS.Relay
compare_transports, plot_transports = EXPERIMENTS.compare_transports, EXPERIMENTS.plot_transports


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.anyio
async def test_relay_counts_every_byte_in_each_direction() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with server, Relay("127.0.0.1", server.sockets[0].getsockname()[1]) as relay:
        reader, writer = await asyncio.open_connection(relay.host, relay.port)
        writer.write(b"x" * 10_000)
        await writer.drain()
        assert await reader.readexactly(10_000) == b"x" * 10_000
        writer.write_eof()
        assert await reader.read() == b""  # the echo server's EOF came back through
        writer.close()
        await writer.wait_closed()
        assert (relay.sent, relay.received, relay.connections) == (10_000, 10_000, 1)


@pytest.mark.anyio
async def test_every_reader_gets_every_message_and_the_bytes_are_counted(
    serve: Callable[..., LiveServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(LESSON.app())
    readings = await compare_transports(server, period=LESSON.module().PERIOD, messages=20)
    by_request, polling, websocket, events = readings
    assert all(len(r.late) == 20 and min(r.late) >= 0 for r in readings)
    assert (by_request.requests, websocket.requests, events.requests) == (20, 1, 1)
    assert polling.requests >= 1
    # A request per message pays its headers 20 times; the WebSocket its handshake once.
    assert websocket.sent + websocket.received < (by_request.sent + by_request.received) / 3
    table = capsys.readouterr().out
    assert "one WebSocket" in table and "Your run:" in table


def test_plot_draws_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    readings = [Reading("a", [0.001, 0.002], 2, 300, 400), Reading("b", [0.0, 0.05], 1, 50, 60)]
    plot_transports(readings)
    assert "Figure" in capsys.readouterr().out  # outside a notebook, display() prints it
