"""``wslab serve``: a lesson's app and browser page, for a room; ``--instances N`` for many.

Whatever stops it, Ctrl-C, SIGTERM (``kill``, systemd, ``docker stop``) or SIGHUP (the
terminal closed), every process it started is stopped and every port it opened is closed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from lessons import Lesson
from lessons.cli import UsageError, lesson_named
from lessons.kit.cleanup import stop_signals_interrupt
from lessons.kit.cluster import MAX_INSTANCES
from lessons.kit.server import LiveServer, SubprocessServer, bind_socket, page_urls

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
            if args.proxy or lesson.number == "06":
                return serve_behind_proxy(lesson, args)
            if args.instances != 1:
                return serve_cluster(lesson, args)
            return serve_one(lesson, args)
        except KeyboardInterrupt:  # a signal while starting or stopping
            pass
    print("wslab: stopped", flush=True)
    return 0


def serve_one(lesson: Lesson, args: argparse.Namespace) -> int:
    """One app, served by uvicorn in a thread of this process, whose main thread takes the
    stop signals (``cmd_serve``): the server then stops gracefully (1012 to its pages)."""
    module = lesson.module(args.app)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    print(f"wslab: serving lesson {lesson.name}: {lesson.title}")
    for url in page_urls(args.host, sock.getsockname()[1]):
        print(f"  open {url} in a browser", flush=True)
    server = LiveServer(
        module.app,
        sock=sock,
        log_level=args.log_level,
        log_config=LOGGING_CONFIG,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    try:
        server.start()
    except RuntimeError as exc:  # uvicorn has logged why
        raise UsageError(str(exc)) from None
    try:
        print(READY, flush=True)
        server.wait()  # until a stop signal's KeyboardInterrupt
    finally:
        server.stop(timeout=GRACEFUL_SECONDS + 5)
    print("wslab: the server ended by itself", flush=True)
    return 1


def start_cluster(
    stack: ExitStack, lesson: Lesson, args: argparse.Namespace, host: str, port: int
) -> tuple[str, list[SubprocessServer]]:
    """Redis and ``args.instances`` app processes on ``host``, from ``port`` on (0: free
    ports), each stopped when ``stack`` closes; returns Redis's URL and the servers."""
    from lessons.kit.cluster import cluster
    from lessons.kit.redis_server import RedisServer

    try:
        redis_server = stack.enter_context(RedisServer())
        servers = cluster(
            lesson.app_path,
            redis_server.url,
            host,
            port,
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
    return redis_server.url, servers


def serve_cluster(lesson: Lesson, args: argparse.Namespace, poll: float = 0.2) -> int:
    """Redis plus N app processes on consecutive ports. Returns 0 after a stop signal, 1 if
    an instance exited by itself, 2 if they could not start."""
    with ExitStack() as stack:
        redis_url, servers = start_cluster(stack, lesson, args, args.host, args.port)
        print(f"wslab: Redis at {redis_url}")
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


def serve_behind_proxy(lesson: Lesson, args: argparse.Namespace) -> int:
    """Redis, N app processes on loopback and a proxy in front on ``--host:--port``: Caddy
    with TLS from its local CA (the default), or nginx (plain HTTP) with lesson 06's
    ``location``. Stops like ``serve_cluster``; 1 if the proxy exits by itself."""
    from lessons import find, load_module
    from lessons.kit.proxy import Caddy, Nginx

    with ExitStack() as stack:
        redis_url, servers = start_cluster(stack, lesson, args, "127.0.0.1", 0)
        try:
            ports = [server.port for server in servers]
            if args.proxy == "nginx":
                location = load_module(find("06").path / "fix_no_upgrade.py").LOCATION
                proxy: Caddy | Nginx = Nginx(ports, location, args.port, args.host)
            else:
                names = [url.split("//")[1].rsplit(":", 1)[0] for url in page_urls(args.host, 0)]
                proxy = Caddy(ports, args.port, args.host, names=names)
            stack.enter_context(proxy)
        except (OSError, RuntimeError) as exc:
            raise UsageError(str(exc)) from None
        print(f"wslab: serving lesson {lesson.name}: {lesson.title}")
        print(f"  Redis at {redis_url}; {proxy.name} (pid {proxy.pid}) in front of:")
        for server in servers:
            print(f"  instance {server.port} (pid {server.pid}) at {server.http_url}")
        urls = proxy.urls if proxy.scheme == "https" else page_urls(args.host, proxy.port)
        for url in urls:
            print(f"  open {url.rstrip('/')}/ in a browser: the one address to share")
        if proxy.scheme == "https":
            print(f"  the proxy's CA certificate, for clients to trust: {proxy.ca_file}")
        print(READY, flush=True)
        try:
            return follow(servers, poll=0.2, proxy_running=lambda: proxy.running)
        except KeyboardInterrupt:
            print("\nwslab: stopping", flush=True)
    print("wslab: stopped", flush=True)
    return 0


def follow(
    servers: list[SubprocessServer], poll: float, proxy_running: Callable[[], bool] = lambda: True
) -> int:
    """Print the processes' output until a stop signal (KeyboardInterrupt).

    An instance ended by a signal (``kill <pid>``: a rolling restart) is started again on
    its port; one that exits by itself, or cannot start again, stops them all (1).
    """
    shown = [0] * len(servers)
    while True:
        if not proxy_running():
            print("wslab: the proxy exited; stopping the instances")
            return 1
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
    serve.add_argument(
        "--proxy",
        choices=["caddy", "nginx"],
        help="a proxy in front of the instances (lesson 06 uses caddy, with TLS, by default)",
    )
    serve.set_defaults(handler=cmd_serve)
