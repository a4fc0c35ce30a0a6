"""``wslab serve``: a lesson's app and browser page, for a room."""

from __future__ import annotations

import argparse
from typing import Any

from lessons.cli import UsageError, lesson_named


def cmd_serve(args: argparse.Namespace) -> int:
    from lessons.kit.server import bind_socket, page_urls, serve_forever

    lesson = lesson_named(args.lesson)
    if not (lesson.path / f"{args.app}.py").is_file():
        raise UsageError(f"lesson {lesson.name} has no app {args.app}.py")
    if args.instances != 1:
        from lessons.kit.cluster import serve_cluster

        return serve_cluster(
            lesson.app_path, args.host, args.port, args.instances, log_level=args.log_level
        )
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    port = sock.getsockname()[1]
    app = lesson.app(args.app)
    print(f"wslab: serving lesson {lesson.name}: {lesson.title}")
    for url in page_urls(args.host, port):
        print(f"  open {url} in a browser")
    print("  press Ctrl-C to stop", flush=True)
    try:
        serve_forever(app, sock, log_level=args.log_level, timeout_graceful_shutdown=5)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("wslab: stopped")
    return 0


def add(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve a lesson's app and browser page")
    serve.add_argument("lesson", help="01, echo or 01_echo")
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a room")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
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
