"""``wslab serve``: a lesson's app and browser page, for a room; ``--instances N`` for many.

Whatever stops it, Ctrl-C, SIGTERM (``kill``, systemd, ``docker stop``) or SIGHUP (the
terminal closed), every process it started is stopped and every port it opened is closed.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from typing import Any

from lessons import Lesson
from lessons.cli import UsageError, lesson_named
from lessons.kit.cleanup import stop_signals_interrupt
from lessons.kit.cluster import MAX_INSTANCES
from lessons.kit.server import SubprocessServer, bind_socket, page_urls, serve_forever

GRACEFUL_SECONDS = 5  # open WebSockets get this long to close (1012) when the server stops
READY = "  ready: press Ctrl-C to stop"


def cmd_serve(args: argparse.Namespace) -> int:
    lesson = lesson_named(args.lesson)
    if not (lesson.path / f"{args.app}.py").is_file():
        raise UsageError(f"lesson {lesson.name} has no app {args.app}.py")
    if not 1 <= args.instances <= MAX_INSTANCES:
        raise UsageError(f"--instances must be between 1 and {MAX_INSTANCES}, not {args.instances}")
    with stop_signals_interrupt():
        try:
            if args.instances != 1:
                return serve_cluster(lesson, args)
            return serve_one(lesson, args)
        except KeyboardInterrupt:  # a signal while starting or stopping
            pass
    print("wslab: stopped", flush=True)
    return 0


def serve_one(lesson: Lesson, args: argparse.Namespace) -> int:
    """One process: the app served here, in the main thread, until a stop signal."""
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    with sock:
        app = lesson.app(args.app)
        print(f"wslab: serving lesson {lesson.name}: {lesson.title}")
        for url in page_urls(args.host, sock.getsockname()[1]):
            print(f"  open {url} in a browser", flush=True)
        serve_forever(
            app,
            sock,
            on_ready=lambda: print(READY, flush=True),
            log_level=args.log_level,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
    print("wslab: stopped", flush=True)
    return 0


def serve_cluster(lesson: Lesson, args: argparse.Namespace, poll: float = 0.2) -> int:
    """Redis plus N app processes on consecutive ports. Returns 0 after a stop signal, 1 if
    an instance exited by itself, 2 if they could not start."""
    from lessons.kit.cluster import cluster
    from lessons.kit.redis_server import RedisServer

    with ExitStack() as stack:
        try:
            redis_server = stack.enter_context(RedisServer())
            servers = cluster(
                lesson.app_path,
                redis_server.url,
                args.host,
                args.port,
                args.instances,
                log_level=args.log_level,
                graceful_timeout=GRACEFUL_SECONDS,
                ws_max_size=65536,
            )
            for server in servers:
                stack.callback(server.stop)
                server.start()
        except (OSError, RuntimeError) as exc:
            raise UsageError(str(exc)) from None
        print(f"wslab: Redis at {redis_server.url}")
        for server in servers:
            for url in page_urls(args.host, server.port):
                print(f"  instance {server.port} (pid {server.pid}): open {url} in a browser")
        print(
            "  every instance shares one room through Redis. A rolling restart: `kill <pid>`\n"
            "  stops an instance gracefully (1012) and it is started again.",
            flush=True,
        )
        print(READY, flush=True)
        try:
            return follow(servers, poll)
        except KeyboardInterrupt:
            print("\nwslab: stopping", flush=True)
    print("wslab: stopped", flush=True)
    return 0


def follow(servers: list[SubprocessServer], poll: float) -> int:
    """Print the processes' output until a stop signal (KeyboardInterrupt).

    An instance ended by a signal (``kill <pid>``: a rolling restart) is started again on
    its port; one that exits by itself, or cannot start again, stops them all (1).
    """
    shown = [0] * len(servers)
    while True:
        for index, server in enumerate(servers):
            alive = server.running
            status = None if alive else server.stop()  # stop() collects its last lines
            lines = server.lines[shown[index] :]
            shown[index] += len(lines)
            for line in lines:
                print(f"[{server.port}] {line}", flush=True)
            if alive:
                continue
            if status is None or status >= 0:
                print(f"wslab: instance {server.port} exited ({status}); stopping the others")
                return 1
            print(f"wslab: instance {server.port} ended by signal {-status}; starting it again")
            try:
                server.start()
            except (OSError, RuntimeError) as exc:
                print(f"wslab: instance {server.port} cannot start again: {exc}")
                return 1
            shown[index] = 0
            print(f"wslab: instance {server.port} is back (pid {server.pid})", flush=True)
        time.sleep(poll)  # a console loop: nothing to wait on but the clock


def add(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve a lesson's app and browser page")
    serve.add_argument("lesson", help="01, echo or 01_echo")
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a room")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument("--log-level", default="info", help="uvicorn's: warning, info, debug")
    serve.add_argument(
        "--app",
        default="app",
        help="which app of the lesson folder: board serves board.py (lesson 03: app, board,"
        " dashboard, canvas)",
    )
    serve.add_argument(
        "--instances",
        type=int,
        default=1,
        help="N processes on consecutive ports sharing one Redis (lesson 05)",
    )
    serve.set_defaults(handler=cmd_serve)
