"""The ``wslab`` command: list the lessons, serve one to a room, run notebooks headless.

Each command lives in its own module of this package and registers itself through
``add(commands)``; this module holds what they share: the parser, the one-line usage
errors and the lesson lookup.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lessons import Lesson, UnknownLessonError, discover, find

STUDENT_DIR = "wslab-student"


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


def lesson_named(name: str) -> Lesson:
    """The lesson a user named, or a UsageError listing the lessons."""
    try:
        return find(name)
    except UnknownLessonError as exc:
        raise UsageError(str(exc)) from None


def cmd_list(_: argparse.Namespace) -> int:
    for lesson in discover():
        print(f"{lesson.name:<16} {lesson.title}")
    return 0


def parser() -> argparse.ArgumentParser:
    from lessons.cli import bench, book, classroom, drift, open, run, serve, student

    top = argparse.ArgumentParser(
        prog="wslab", description="wslab: a runnable, tested course on real-time WebSockets."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="list the lessons")
    listing.set_defaults(handler=cmd_list)
    for module in (open, serve, bench, run, student, book, classroom, drift):
        module.add(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"wslab: error: {exc}", file=sys.stderr)
        return 2


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
