"""``wslab serve``: a lesson's app and browser page, for a room; ``--instances N`` for many.

Every argument is checked before anything starts, and every port is bound before Redis,
the instances or the proxy start: a mistake is one line and exit status 2, with nothing left
running. Whatever stops it, Ctrl-C, SIGTERM (``kill``, systemd, ``docker stop``) or SIGHUP
(the terminal closed), every process it started is stopped and every port it opened is
closed.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import time
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from lessons import Lesson, discover
from lessons.cli import (
    UsageError,
    between,
    command,
    last_error,
    lesson_named,
    log_level,
    one_line,
    port,
    ports_fit,
)
from lessons.kit.cleanup import stop_signals_interrupt
from lessons.kit.cluster import MAX_INSTANCES, cluster
from lessons.kit.proxy import Caddy, Nginx, find_nginx
from lessons.kit.server import (
    READY_LINE,
    LiveServer,
    SubprocessServer,
    bind_socket,
    hostport,
    start_together,
)

GRACEFUL_SECONDS = 5  # open WebSockets get this long to close (1012) when the server stops
READY = "  ready: press Ctrl-C to stop"
# Lessons taught behind a proxy: `wslab serve 06` runs as the lesson does, on two instances.
PROXIED = {"06": "caddy"}
INSTANCES_BEHIND_PROXY = 2
# What an instance prints while it starts: wslab has said it already.
STARTUP = re.compile(
    re.escape(READY_LINE) + r"|Started server process|Waiting for application startup"
    r"|Application startup complete"
)
LOOPBACK = ("127.", "localhost", "::1")
WILDCARD = {"0.0.0.0", "::", ""}


def page_urls(host: str, port: int) -> list[str]:
    """Where people open a page served on ``host:port``: a wildcard host is reachable at
    this machine's own addresses: loopback, the host name's, and the one its routing table
    uses to reach other machines (asked with a UDP socket "connected" to a documentation
    address: connecting a UDP socket sends nothing). Debian and many containers resolve the
    host name to a loopback address, which no other machine can open."""
    if host in WILDCARD:
        names = {"127.0.0.1"}
        try:
            names.add(socket.gethostbyname(socket.gethostname()))
        except OSError:
            pass
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))
                names.add(probe.getsockname()[0])
        except OSError:  # no route: loopback only
            pass
        return [f"http://{name}:{port}/" for name in sorted(names)]
    return [f"http://{hostport(host, port)}/"]


def shares_rooms(app_file: Path) -> bool:
    """Whether an app shares its clients across processes: it reads ``BROKER_URL``."""
    return re.search(r"\bBROKER_URL\b", app_file.read_text(encoding="utf-8")) is not None


def cmd_serve(args: argparse.Namespace) -> int:
    lesson = lesson_named(args.lesson)
    app_file = lesson.file(args.app)
    if not app_file.is_file():
        apps = sorted(p.stem for p in lesson.path.glob("*.py") if is_app(p))
        raise UsageError(
            f"lesson {lesson.name} has no app {args.app}.py; its apps: {', '.join(apps)}"
        )
    proxy = args.proxy or PROXIED.get(lesson.number)
    instances = args.instances or (INSTANCES_BEHIND_PROXY if proxy else 1)
    if (proxy or instances > 1) and not shares_rooms(app_file):
        asked = (
            f"--proxy {proxy}"
            if args.proxy
            else f"--instances {instances}"
            if args.instances
            else f"served behind {proxy}"
        )
        able = " and ".join(one.name for one in discover() if shares_rooms(one.app_path))
        raise UsageError(
            f"{asked}: lesson {lesson.name}'s {app_file.name} has no rooms to share across "
            f"processes (it reads no BROKER_URL); lessons {able} do"
        )
    if proxy == "nginx" and find_nginx() is None:
        raise UsageError("--proxy nginx: nginx is not installed (apt-get install nginx)")
    ports_fit(args.port, 1 if proxy else instances)
    args.instances, args.proxy = instances, proxy
    with stop_signals_interrupt():
        try:
            if proxy:
                return serve_behind_proxy(lesson, app_file, args)
            if instances != 1:
                return serve_cluster(lesson, app_file, args)
            return serve_one(lesson, args)
        except KeyboardInterrupt:  # a signal while starting or stopping
            pass
    print("wslab: stopped", flush=True)
    return 0


def is_app(path: Path) -> bool:
    """Whether a file at a lesson's top level is an app that ``--app`` lists (it serves the
    pitfalls and fixes of ``pitfalls/`` too, by name, unlisted)."""
    return "app = " in path.read_text(encoding="utf-8")


def addresses(urls: list[str], host: str) -> list[str]:
    """Lines naming the one address to share first (another machine's way in, else
    ``localhost``), then the others for what they are; ``host`` is what was listened on."""

    def loopback(url: str) -> bool:
        return (urlsplit(url).hostname or "").startswith(LOOPBACK)

    first, *others = sorted(urls, key=lambda url: (loopback(url), "localhost" not in url))
    if not loopback(first):
        lines = [f"open {first} in a browser: the address to share"]
    elif host in WILDCARD:
        port = urlsplit(first).port
        lines = [f"open {first} in a browser; other machines: this one's address, port {port}"]
    else:
        lines = [f"open {first} in a browser (this machine only: --host 0.0.0.0 serves a room)"]
    return lines + [
        f"also {url} ({'this machine only' if loopback(url) else 'the same server'})"
        for url in others
    ]


def serve_one(lesson: Lesson, args: argparse.Namespace) -> int:
    """One app, served by uvicorn in a thread of this process, whose main thread takes the
    stop signals (``cmd_serve``): the server then stops gracefully (1012 to its pages)."""
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    try:
        module = load(lesson, args.app)
    except UsageError:
        sock.close()
        raise
    print(f"wslab: serving lesson {lesson.name}: {lesson.describe(args.app)}")
    for line in addresses(page_urls(args.host, sock.getsockname()[1]), args.host):
        print(f"  {line}", flush=True)
    return serve_until_stopped(module.app, sock, args.log_level, READY)


def serve_until_stopped(
    app: Any, sock: Any, log_level: str, ready: str | None, **config: Any
) -> int:
    """Serve ``app`` on ``sock`` in a thread of this process until a stop signal reaches the
    main thread (a KeyboardInterrupt, from ``stop_signals_interrupt``), then stop gracefully
    (1012 to open pages). Prints ``ready`` once serving; 1 if the server ended by itself."""
    server = LiveServer(
        app,
        sock=sock,
        log_level=log_level,
        log_config=LOGGING_CONFIG,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **config,
    )
    try:
        server.start()
    except RuntimeError as exc:  # uvicorn has logged why
        raise UsageError(str(exc)) from None
    try:
        if ready:
            print(ready, flush=True)
        server.wait()  # until a stop signal's KeyboardInterrupt
    finally:
        server.stop(timeout=GRACEFUL_SECONDS + 5)
    print("wslab: the server ended by itself", flush=True)
    return 1


def load(lesson: Lesson, stem: str) -> ModuleType:
    """The lesson's app module; a UsageError in one line if it cannot be imported."""
    try:
        return lesson.module(stem)
    except Exception as exc:  # whatever the app raises as it is imported
        raise UsageError(f"{stem}.py cannot be loaded: {type(exc).__name__}: {exc}") from None


def start_cluster(
    stack: ExitStack, app_file: Path, args: argparse.Namespace, host: str, port: int
) -> tuple[str, list[SubprocessServer]]:
    """``args.instances`` processes of ``app_file`` on ``host``, from ``port`` on (0: free
    ports), and a Redis they share, each stopped when ``stack`` closes; returns Redis's URL
    and the servers. Their ports are bound first: a busy one stops everything before Redis
    starts."""
    from lessons.kit.redis_server import RedisServer

    try:
        servers = cluster(
            app_file,
            "",  # Redis's URL, known once it runs: below
            host,
            port,
            args.instances,
            log_level=args.log_level,
            graceful_timeout=GRACEFUL_SECONDS,
            ws_max_size=65536,
        )
    except OSError as exc:
        raise UsageError(str(exc)) from None
    for server in servers:
        stack.callback(server.stop)
    try:
        redis_server = stack.enter_context(RedisServer())
        for server in servers:
            server.env["BROKER_URL"] = redis_server.url
        start_together(servers)
    except (OSError, RuntimeError) as exc:
        raise UsageError(one_line(exc)) from None
    return redis_server.url, servers


def serve_cluster(lesson: Lesson, app_file: Path, args: argparse.Namespace) -> int:
    """Redis plus N app processes on consecutive ports. Returns 0 after a stop signal, 1 if
    an instance could not start again, 2 if they could not start."""
    with ExitStack() as stack:
        redis_url, servers = start_cluster(stack, app_file, args, args.host, args.port)
        print(f"wslab: serving lesson {lesson.name}: {lesson.describe(args.app)}")
        print(f"  {len(servers)} instances share the Redis at {redis_url}:")
        for server in servers:
            urls = page_urls(args.host, server.port)
            if server is servers[0]:
                first, *others = addresses(urls, args.host)
                print(f"  instance {server.port} (pid {server.pid}): {first}")
                print("".join(f"    {line}\n" for line in others), end="")
            else:
                url = addresses(urls, args.host)[0].split()[1]
                print(
                    f"  instance {server.port} (pid {server.pid}): also {url} "
                    "(the same rooms, another process)"
                )
        print(
            "  a rolling restart: `kill <pid>` stops an instance gracefully (1012), its pages\n"
            "  move to another one, and it is started again.",
            flush=True,
        )
        print(READY, flush=True)
        try:
            return follow(servers, poll=0.2)
        except KeyboardInterrupt:
            print("\nwslab: stopping", flush=True)
    print("wslab: stopped", flush=True)
    return 0


def serve_behind_proxy(lesson: Lesson, app_file: Path, args: argparse.Namespace) -> int:
    """Redis, N app processes on loopback and a proxy in front on ``--host:--port``: Caddy
    with TLS from its local CA (the default), or nginx (plain HTTP) with lesson 06's
    ``location``. Stops like ``serve_cluster``; 1 if the proxy exits by itself."""
    from lessons import find

    try:
        bind_socket(args.host, args.port).close()  # busy or unknown: before anything starts
    except OSError as exc:
        raise UsageError(str(exc)) from None
    with ExitStack() as stack:
        redis_url, servers = start_cluster(stack, app_file, args, "127.0.0.1", 0)
        try:
            ports = [server.port for server in servers]
            if args.proxy == "nginx":
                location = find("06").module("fix_no_upgrade").LOCATION
                proxy: Caddy | Nginx = Nginx(ports, location, args.port, args.host)
            else:
                names = [urlsplit(url).hostname or "" for url in page_urls(args.host, 0)]
                proxy = Caddy(ports, args.port, args.host, names=names)
            stack.enter_context(proxy)
        except (OSError, RuntimeError) as exc:
            raise UsageError(one_line(exc)) from None
        print(f"wslab: serving lesson {lesson.name}: {lesson.describe(args.app)}")
        urls = proxy.urls if proxy.scheme == "https" else page_urls(args.host, proxy.port)
        for line in addresses([f"{url.rstrip('/')}/" for url in urls], args.host):
            print(f"  {line}")
        if proxy.scheme == "https":
            print(f"  the proxy's CA certificate, for clients to trust: {proxy.ca_file}")
        print(
            f"  {proxy.name} (pid {proxy.pid}) on port {proxy.port} in front of "
            f"{len(servers)} instance{'s' * (len(servers) > 1)} sharing the Redis at {redis_url}:"
        )
        for server in servers:
            print(f"    instance {server.port} (pid {server.pid}), direct: {server.http_url}")
        if len(servers) > 1:
            print("  a rolling restart: `kill <pid>` of an instance; the proxy moves its pages")
        print(READY, flush=True)
        try:
            return follow(servers, poll=0.2, proxy=proxy)
        except KeyboardInterrupt:
            print("\nwslab: stopping", flush=True)
    print("wslab: stopped", flush=True)
    return 0


def ended(status: int | None) -> str:
    """How a process ended, in words: ``by SIGTERM`` or ``with exit status 3``."""
    if status is not None and status < 0:
        return f"by {signal.Signals(-status).name}"
    return f"with exit status {status}"


def follow(servers: list[SubprocessServer], poll: float, proxy: Caddy | Nginx | None = None) -> int:
    """Print the instances' output until a stop signal (KeyboardInterrupt), less what they
    print as they start.

    An instance that ends after it was serving (``kill <pid>``: a rolling restart; or a
    crash) is started again on its port, once: one that does not come up again stops them
    all (1), as does the proxy ending.
    """
    shown = [0] * len(servers)
    while True:
        if proxy is not None and not proxy.running:
            print(f"wslab: {proxy.name} exited: {last_error(proxy.log())}; stopping everything")
            return 1
        for index, server in enumerate(servers):
            alive = server.running
            status = None if alive else server.stop()  # stop() collects its last lines
            lines = server.lines[shown[index] :]
            shown[index] += len(lines)
            for line in lines:
                if not STARTUP.search(line):
                    print(f"[instance {server.port}] {line}", flush=True)
            if alive:
                continue
            print(f"wslab: instance {server.port} ended {ended(status)}; starting it again")
            try:
                server.start()
            except (OSError, RuntimeError) as exc:
                print(f"wslab: instance {server.port} did not come back: {one_line(exc)}")
                print("wslab: stopping everything", flush=True)
                return 1
            shown[index] = 0
            print(f"wslab: instance {server.port} is back (pid {server.pid})", flush=True)
        time.sleep(poll)  # a console loop: nothing to wait on but the clock


def add(commands: Any) -> None:
    serve = command(
        commands,
        "serve",
        "serve a lesson's app and browser page to a room, until Ctrl-C",
        "wslab serve 01 --host 0.0.0.0 --port 8000\n"
        "wslab serve 05 --host 0.0.0.0 --instances 2\n"
        "wslab serve 03 --app board",
    )
    serve.add_argument("lesson", help="01, echo or 01_echo")
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a room")
    serve.add_argument("--port", type=port, default=8000, help="TCP port, 0 for any free one")
    serve.add_argument(
        "--log-level",
        type=log_level,
        default="info",
        metavar="LEVEL",
        help=f"uvicorn's log level: {', '.join(LOG_LEVELS)}",
    )
    serve.add_argument(
        "--app",
        default="app",
        help="which app of the lesson folder: board serves board.py (lesson 03: app, board,"
        " dashboard, canvas)",
    )
    serve.add_argument(
        "--instances",
        type=between(1, MAX_INSTANCES),
        metavar="N",
        help="N processes on consecutive ports sharing one Redis, for the apps that share "
        f"rooms through it (default: 1; {INSTANCES_BEHIND_PROXY} behind a proxy)",
    )
    serve.add_argument(
        "--proxy",
        choices=["caddy", "nginx"],
        help="a proxy in front of the instances (default: none; caddy, with TLS, for lesson 06)",
    )
    serve.set_defaults(handler=cmd_serve)
