"""``wslab bench``: the fan-out benchmark on loopback, bounded in clients, messages and time."""

from __future__ import annotations

import argparse
from typing import Any

from lessons.cli import UsageError


def cmd_bench(args: argparse.Namespace) -> int:
    from lessons.kit.bench import run_bench

    try:
        return run_bench(args.clients, args.messages, args.size, args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def add(commands: Any) -> None:
    bench = commands.add_parser("bench", help="fan-out benchmark on loopback (bounded)")
    bench.add_argument("--clients", type=int, default=20)
    bench.add_argument("--messages", type=int, default=300)
    bench.add_argument("--size", type=int, default=16384, help="bytes per message")
    bench.add_argument("--timeout", type=float, default=5.0, help="seconds per scenario")
    bench.set_defaults(handler=cmd_bench)
