"""``wslab bench``: the fan-out benchmark on loopback, bounded in clients, messages and time;
``--implementations``: uvicorn's WebSocket implementations measured side by side."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from lessons.cli import UsageError, command, output_file, seconds
from lessons.kit.cleanup import stop_signals_interrupt

INTERRUPTED = 130  # the shell's status for a program stopped by a signal
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def cmd_bench(args: argparse.Namespace) -> int:
    from lessons.bench import bench

    args.timeout = args.timeout or bench.default_timeout(args.clients, args.messages)
    try:
        bench.check_limits(args.clients, args.messages, args.size, args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    other = "--implementations" if args.implementations else "--capacity" if args.capacity else ""
    for option, given in (("--proxy", args.proxy), ("--plot", args.plot)):
        if other and given:
            raise UsageError(f"{option} is for the fan-out benchmark: not with {other}")
    with stop_signals_interrupt():
        try:
            if args.implementations:
                return _implementations()
            if args.capacity:
                return _capacity()
            heading = (
                f"{args.clients} clients on {bench.LOOPBACK}, {args.messages} messages of "
                f"{args.size} bytes"
            )
            print(f"wslab bench: {heading} each,\n  at most {args.timeout:g}s a scenario")
            started = time.perf_counter()
            results = asyncio.run(
                bench.measure(
                    clients=args.clients,
                    messages=args.messages,
                    size=args.size,
                    timeout=args.timeout,
                    proxy=args.proxy,
                    progress=lambda name: print(f"  running: {name}", flush=True),
                )
            )
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: every server is stopped
            print("\nwslab: stopped", flush=True)
            return INTERRUPTED
    print(bench.table(results))
    print(
        f"({time.perf_counter() - started:.1f}s; a stalled run that times out shows what "
        "was delivered by then)"
    )
    if args.plot:
        bench.plot(results, args.plot, f"wslab bench: {heading}")
        print(f"plot: {args.plot}")
    return 0


def _implementations() -> int:
    from lessons.bench import implementations

    print("wslab bench --implementations: one server process each, clients on 127.0.0.1")
    started = time.perf_counter()
    results = implementations.measure(progress=lambda name: print(f"  running: {name}"))
    print(implementations.table(results))
    print(f"({time.perf_counter() - started:.1f}s)")
    return 0


def _capacity() -> int:
    from lessons.bench.capacity import capacity

    print("wslab bench --capacity: an echo app direct, through Caddy and through nginx")
    started = time.perf_counter()
    asyncio.run(capacity())
    print(f"({time.perf_counter() - started:.1f}s)")
    return 0


def add(commands: Any) -> None:
    bench = command(
        commands,
        "bench",
        "measure fan-out to many clients on loopback, each design against broadcast() (bounded)",
        "wslab bench --clients 500 --size 64 --plot bench.png",
    )
    bench.add_argument(
        "--clients", type=int, default=20, help="connected clients, one of them publishing"
    )
    bench.add_argument(
        "--messages", type=int, default=300, help="messages published (each to every client)"
    )
    bench.add_argument("--size", type=int, default=16384, help="bytes per message")
    bench.add_argument(
        "--timeout",
        type=seconds,
        help="seconds at most per scenario (default: 5, or one per 10,000 deliveries "
        "when there are more, up to 60)",
    )
    bench.add_argument(
        "--proxy",
        action="store_true",
        help="add the production manager behind Caddy (TLS) and behind nginx (lesson 06)",
    )
    bench.add_argument(
        "--plot",
        type=output_file(*PLOT_SUFFIXES),
        metavar="FILE.png",
        help="also draw the results into this image (.png, .svg or .pdf)",
    )
    modes = bench.add_mutually_exclusive_group()
    modes.add_argument(
        "--capacity",
        action="store_true",
        help="instead: file descriptors and memory per connection, and what a proxy adds "
        "to round trips and CPU per message (lesson 06, about 15 s)",
    )
    modes.add_argument(
        "--implementations",
        action="store_true",
        help="instead: measure uvicorn's WebSocket implementations side by side (about 1 min)",
    )
    bench.set_defaults(handler=cmd_bench)
