"""`wslab bench`: every scenario side by side, bounded arguments, and its library parts:
the measuring clients among them."""

from __future__ import annotations

import asyncio
import re
import time
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from lessons.bench.bench import (
    CPU_TICK,
    LIMITS,
    NO_NGINX,
    Result,
    check_limits,
    default_timeout,
    table,
)
from lessons.bench.fanout import FanoutClient, parse_frames
from lessons.cli import main as wslab
from lessons.kit.wire import BINARY, TEXT


def test_bench_prints_every_scenario_with_ratios_to_the_baseline_within_80_columns_and_plots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["--clients", "3", "--messages", "20", "--size", "1000", "--timeout", "2"]
    assert wslab(["bench", *args, "--plot", str(tmp_path / "plots" / "bench.png")]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if re.search(r" \d+% ", line)]
    assert len(rows) == 8
    assert rows[0].startswith("broadcast() (baseline)") and " 1.00 " in rows[0]
    assert all(" 100% " in row for row in rows)  # tiny volumes: even the stalled runs finish
    printed = captured.out.split("\nplot: ")[0]  # then the file's name, as long as it is
    assert max(len(line) for line in printed.splitlines()) <= 80
    assert "Traceback" not in captured.out + captured.err
    assert (tmp_path / "plots" / "bench.png").read_bytes().startswith(b"\x89PNG")


def fake(name: str, cpu_ticks: int, delivered: int = 100) -> Result:
    return Result(name, 100, [0.001] * delivered, 0.1, cpu_ticks * CPU_TICK, 0.01)


def test_the_table_marks_cpu_figures_from_too_few_ticks_and_shows_skipped_rows() -> None:
    results = [fake("baseline", 50), fake("few", 3), fake("none", 0), fake("half", 50, 50)]
    results.append(Result("nginx", 100, skipped=NO_NGINX))
    text = table(results, width=80)
    rows = text.split("servers µs")[1].splitlines()[1:6]
    cpu = {row.split()[0]: row.split()[1] for row in rows}
    per_tick = CPU_TICK / 100 * 1e6
    assert cpu == {
        "baseline": f"{50 * per_tick:.1f}",
        "few": f"~{3 * per_tick:.1f}",  # too coarse to compare
        "none": f"<{per_tick:.3g}",  # below the clock's resolution: at most one tick
        "half": f"{50 * per_tick * 2:.1f}",
        "nginx": "skipped:",
    }
    assert "fewer than 10 ticks" in text
    assert text.count("skipped: nginx not installed (apt-get install nginx)") == 2  # both tables
    assert " 50% " in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_narrow_terminal_gets_one_block_per_scenario() -> None:
    results = [fake("broadcast() (baseline)", 50), Result("nginx", 100, skipped=NO_NGINX)]
    lines = table(results, width=60).splitlines()
    assert lines[0] == "broadcast() (baseline)" and lines[1].startswith("  delivered 100%")
    assert "  skipped: nginx not installed (apt-get install nginx)" in lines
    assert max(len(line) for line in lines) <= 60


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"clients": 100_000}, "clients must be between 1 and 500"),
        ({"size": 0}, "size must be between 1 and 1000000"),
        ({"timeout": 600.0}, r"timeout must be in \(0, 60.0\] seconds"),
    ],
)
def test_bench_refuses_unbounded_arguments(arguments: dict[str, float], message: str) -> None:
    limits = {"clients": 20, "messages": 300, "size": 16384, "timeout": 5.0, **arguments}
    with pytest.raises(ValueError, match=message):
        check_limits(**limits)  # type: ignore[arg-type]


def test_bench_options_say_their_units(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wslab(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for words in ["bytes per message", "seconds at most per scenario", "connected clients"]:
        assert words in help_text


def test_the_default_timeout_grows_with_the_load_within_its_limit() -> None:
    assert default_timeout(20, 300) == 5.0  # the default run: 6,000 deliveries
    assert default_timeout(500, 300) == 15.0  # 150,000 deliveries would be cut at 5 s
    assert default_timeout(500, 5000) == LIMITS["timeout"]


# --- the measuring clients (lessons.bench.fanout) ---

FRAMES = [(TEXT, True, b"@0:" + b"a" * 50), (TEXT, False, b"@1:" + b"b" * 300), (0, True, b"c")]
FRAMES += [(BINARY, True, b"d" * 70_000)]  # lengths with a 2-byte, 4-byte and 10-byte header


def test_frames_are_cut_from_the_bytes_however_the_reads_split_them() -> None:
    stream = b"".join(
        Frame(Opcode(op), data, fin).serialize(mask=False) for op, fin, data in FRAMES
    )
    for read in (1, 2, 3, 7, 125, 4096, len(stream)):
        data, parsed = b"", []
        for offset in range(0, len(stream), read):
            data += stream[offset : offset + read]
            frames, stop = parse_frames(data, 0, len(data))
            parsed += frames
            data = data[stop:]
        assert parsed == FRAMES and data == b"", f"reads of {read} bytes"
    assert parse_frames(stream, 0, 1 + 2) == ([], 0)  # a header still arriving: nothing yet


def test_a_masked_frame_from_the_server_is_refused() -> None:
    with pytest.raises(ValueError, match="masked"):
        parse_frames(Frame(Opcode.TEXT, b"hi").serialize(mask=True), 0, 8)


@pytest.mark.anyio
async def test_the_client_answers_pings_reads_every_kind_of_message_and_closes_cleanly() -> None:
    closed: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await asyncio.wait_for(await ws.ping(), 5)  # answered, or the test fails here
        await ws.send("@0:" + "x" * 300)
        await ws.send("not published")  # no header: not counted
        await ws.send("@1:" + "y" * 100_000)  # over the read buffer: it grows
        await ws.send(["@2:", "in two fragments"])
        await ws.wait_closed()
        closed.append(ws.close_code)

    sent = {0: time.perf_counter(), 1: time.perf_counter(), 2: time.perf_counter()}
    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = await FanoutClient.connect(f"ws://127.0.0.1:{port}", sent, expected=3)
        try:
            await asyncio.wait_for(client.done, 5)
        finally:
            await client.close()
    assert len(client.latencies) == 3 and all(0 < t < 5 for t in client.latencies)
    assert closed == [1000]


@pytest.mark.anyio
async def test_the_client_refuses_a_server_that_refuses_the_handshake() -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return ws.respond(HTTPStatus.FORBIDDEN, "no\n")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionError, match="403"):
            await FanoutClient.connect(f"ws://127.0.0.1:{port}", {}, expected=1)


@pytest.mark.anyio
async def test_a_client_the_server_closes_answers_the_close_and_stops_waiting() -> None:
    closed: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.close(1013, "slow consumer")  # waits for the client's answering close frame
        closed.append(ws.close_code)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = await FanoutClient.connect(f"ws://127.0.0.1:{port}", {}, expected=1)
        try:
            await asyncio.wait_for(client.done, 5)  # settled: nothing more will come
            await asyncio.wait_for(client.closed, 5)
        finally:
            await client.close()
    assert client.latencies == [] and closed == [1013]
