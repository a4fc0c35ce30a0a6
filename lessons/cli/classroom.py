"""``wslab classroom``, ``wslab hand``, and the ``--report`` options of check and open.

``wslab classroom`` serves ``lessons/classroom`` until Ctrl-C, SIGTERM or SIGHUP (a
graceful stop, as ``wslab serve``), on the state in ``--data`` (SQLite): started again on
the same file, it has the same join code, the same instructor URL and every event.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lessons.classroom.client import ClassroomError, Learner
from lessons.cli import (
    STUDENT_DIR,
    UsageError,
    command,
    log_level,
    output_dir,
    port,
    seconds,
)

DATA_FILE = "wslab-classroom.sqlite3"
PORT = 8800
KERNEL_EXTENSION = "--ext=lessons.classroom.notebook"


def learner_url(host: str, port: int) -> str:
    """The URL to give learners: another machine's way in when there is one."""
    from lessons.cli.serve import page_urls

    urls = page_urls(host, port)
    return next((url for url in urls if not url.startswith("http://127.")), urls[0])


def cmd_classroom(args: argparse.Namespace) -> int:
    from lessons.classroom.app import Settings, create_app
    from lessons.classroom.store import Store
    from lessons.cli.serve import serve_until_stopped
    from lessons.kit.cleanup import stop_signals_interrupt
    from lessons.kit.server import bind_socket

    try:
        store = Store(args.data)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot use {args.data} as the classroom's database: {exc}") from None
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        store.close()
        raise UsageError(str(exc)) from None
    with sock, stop_signals_interrupt():
        try:
            url = learner_url(args.host, sock.getsockname()[1])
            print(f"join code: {store.code}")
            print(f"learners: {url}")
            print(f"instructor: {url}instructor#{store.instructor_secret}", flush=True)
            settings = Settings(quiet_after=args.quiet * 60)
            return serve_until_stopped(
                create_app(store, settings),
                sock,
                args.log_level,
                None,  # the three lines above are all the instructor needs
                ws_max_size=4 * settings.max_bytes,  # uvicorn's own bound, past the app's 1009
            )
        except KeyboardInterrupt:  # a signal while starting or stopping
            pass
        finally:
            store.close()
    print("wslab: stopped", flush=True)
    return 0


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """``--report URL --code CODE --name NAME``: all three, or none."""
    group = parser.add_argument_group("classroom", "report to a `wslab classroom` (all three)")
    group.add_argument("--report", metavar="URL", help="the learners' URL the classroom printed")
    group.add_argument("--code", help="the classroom's join code")
    group.add_argument("--name", help="your name in the classroom (it stays yours)")


def learner_from(args: argparse.Namespace, home: str | Path) -> Learner | None:
    """The learner the options describe (None without them); ``home``, the working copy,
    keeps the name's secret."""
    given = [args.report, args.code, args.name]
    if not any(given):
        return None
    if not all(given):
        raise UsageError("--report, --code and --name go together")
    if urlsplit(args.report).scheme not in {"http", "https"} or not urlsplit(args.report).netloc:
        raise UsageError(f"--report takes the classroom's http:// URL, not {args.report!r}")
    return Learner(args.report, args.code, args.name, Path(home))


def report_checks(learner: Learner | None, lesson: str, results: list[Any], status: int) -> int:
    """Send ``wslab check``'s results (a list of CheckResult); the exit status: ``status``,
    or 2 after one line saying why the classroom did not get them."""
    if learner is None:
        return status
    try:
        learner.report(lesson, [(r.exercise, r.passed, r.hint) for r in results])
    except ClassroomError as exc:
        print(f"wslab: classroom: {exc}", file=sys.stderr)
        return 2
    print(f"reported to the classroom as {learner.name}")
    return status


def report_from_notebooks(args: argparse.Namespace, home: Path) -> None:
    """``wslab open --report``: the kernels JupyterLab starts report each check cell."""
    learner = learner_from(args, home)
    if learner is not None:
        os.environ.update(learner.environment())


def kernel_options() -> list[str]:
    """The kernel's extra command-line options: the reporting extension, when reporting."""
    return [KERNEL_EXTENSION] if Learner.from_environment() else []


def cmd_hand(args: argparse.Namespace) -> int:
    learner = learner_from(args, args.dir)
    if learner is None:
        raise UsageError("--report, --code and --name say which classroom, and who you are")
    try:
        learner.hand(args.kind)
    except ClassroomError as exc:
        print(f"wslab: classroom: {exc}", file=sys.stderr)
        return 2
    print(f"your hand is up ({args.kind}): the instructor sees it now")
    return 0


def add(commands: Any) -> None:
    classroom = command(
        commands,
        "classroom",
        "serve a classroom: see every learner's checks and hands, live",
        "wslab classroom --host 0.0.0.0   (then give learners the join code and URL it prints)",
    )
    classroom.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a room")
    classroom.add_argument("--port", type=port, default=PORT, help="TCP port (0: any free port)")
    classroom.add_argument("--data", default=DATA_FILE, help="the SQLite file that keeps it")
    classroom.add_argument(
        "--quiet", type=seconds, default=10, help="minutes without a check or a hand: gone quiet"
    )
    classroom.add_argument("--log-level", type=log_level, default="warning", help="uvicorn's")
    classroom.set_defaults(handler=cmd_classroom)

    hand = command(
        commands,
        "hand",
        "raise your hand in a classroom: stuck or done",
        "wslab hand stuck --report http://10.0.0.5:8800 --code 4F7K --name ada",
    )
    hand.add_argument("kind", choices=["stuck", "done"])
    hand.add_argument("--dir", type=output_dir, default=STUDENT_DIR, help="your working copy")
    add_report_options(hand)
    hand.set_defaults(handler=cmd_hand)
