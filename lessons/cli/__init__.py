"""The ``wslab`` command: list the lessons, serve one to a room, run notebooks headless.

Each command lives in its own module of this package and registers itself through
``add(commands)``; this module holds what they share: the parser, whose every mistake is
answered in one line with exit status 2, the checks of common arguments (``type=``
functions for argparse: ports, log levels, counts, seconds, output folders), and the lookup
of lessons and notebooks by the names the commands take.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from lessons import WORKBOOK_DIR, Lesson, UnknownLessonError, discover, find

STUDENT_DIR = "wslab-student"
MAX_PORT = 65535
T = TypeVar("T")


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; each option's default shown after its help,
    unless it has none worth showing (a flag, or nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        nothing = default is None or default is False or default is argparse.SUPPRESS
        if "%(default)" in text or nothing or default == []:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line: no usage block above them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def command(commands: Any, name: str, summary: str, example: str, **options: Any) -> Parser:
    """A subcommand with its one-line ``summary`` (in ``wslab --help`` and atop its own help)
    and an ``example`` (its help's last lines)."""
    parser: Parser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=HelpFormatter,
        **options,
    )
    parser.set_defaults(parser=parser)
    return parser


# --- checks of common arguments: argparse `type=` functions, and helpers for the handlers ---


def _parsed(text: str, convert: Callable[[str], T], what: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def port(text: str) -> int:
    """A TCP port: 0 to 65535 (0: any free port)."""
    value = _parsed(text, int, "a port number")
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{value} is not a port: ports go from 0 (any free port) to {MAX_PORT}"
        )
    return value


def ports_fit(first: int, count: int) -> None:
    """UsageError unless ``count`` consecutive ports from ``first`` are all ports (0: any)."""
    if first and first + count - 1 > MAX_PORT:
        raise UsageError(
            f"{count} instances from port {first} need ports up to {first + count - 1}, "
            f"past the last port ({MAX_PORT}): choose a lower --port"
        )


def log_level(text: str) -> str:
    """One of uvicorn's log levels (``uvicorn.config.LOG_LEVELS``), in any case."""
    from uvicorn.config import LOG_LEVELS

    if text.lower() not in LOG_LEVELS:
        known = ", ".join(LOG_LEVELS)
        raise argparse.ArgumentTypeError(f"unknown log level {text!r}: uvicorn's are {known}")
    return text.lower()


def between(low: int, high: int) -> Callable[[str], int]:
    """A ``type=`` for a whole number from ``low`` to ``high``."""

    def whole(text: str) -> int:
        value = _parsed(text, int, "a whole number")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    whole.__name__ = "number"  # what argparse calls it in its own messages
    return whole


def seconds(text: str) -> float:
    """A positive number of seconds."""
    value = _parsed(text, float, "a number of seconds")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _writable(folder: Path) -> None:
    """ArgumentTypeError unless ``folder``, or its nearest ancestor that exists (where it
    would be made), is a folder that can be written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {existing}: permission denied")


def output_dir(text: str) -> Path:
    """A folder to write into: one that exists and can be written, or that can be made."""
    path = Path(text).expanduser()
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name")
    _writable(path)
    return path


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """A ``type=`` for a file to write, ending with one of ``suffixes`` (``.png``), in a
    folder that can be written or made."""

    def writable_file(text: str) -> Path:
        path = Path(text).expanduser()
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{text!r}: the file name must end with {' or '.join(suffixes)}"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
        _writable(path.parent)
        return path

    writable_file.__name__ = "file name"
    return writable_file


def last_error(text: str) -> str:
    """The last line of a log or an output that reads as an error (for a JSON log line, its
    message), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()] or ["(nothing)"]
    cause = next(
        (line for line in reversed(lines) if re.search(r"error|emerg|fatal", line, re.I)),
        lines[-1],
    )
    with contextlib.suppress(ValueError, AttributeError):
        cause = json.loads(cause).get("msg", cause)
    return cause


def one_line(error: BaseException) -> str:
    """An error whose message runs over lines (a first line saying what failed, then a
    process's log or output) in one line: that first line, then ``last_error`` of the rest."""
    first, _, rest = str(error).strip().partition("\n")
    if not rest.strip():
        return first or type(error).__name__
    return f"{first.rstrip(':;')}: {last_error(rest)}"


# --- lessons and notebooks by name ---


def workbook() -> dict[str, Path]:
    """The workbook's notebooks by the short names the commands take (``start``,
    ``capstone``, ``capstone2``, ``testing``): each file's name without its number, up to the
    first ``_``, then its part number from part 2 on (``capstone_2_restart``: ``capstone2``;
    part 1 keeps the plain name)."""
    names = {}
    for path in sorted(WORKBOOK_DIR.glob("*.ipynb")):
        name, _, rest = re.sub(r"^\d+_", "", path.stem).partition("_")
        part = rest.split("_")[0]
        names[name + part if part.isdigit() and part != "1" else name] = path
    return names


def lesson_named(name: str) -> Lesson:
    """The lesson a user named, or a UsageError listing the lessons (and saying so of a
    workbook notebook's name: it has no app of its own to serve)."""
    try:
        return find(name)
    except UnknownLessonError as exc:
        if name in workbook():
            raise UsageError(f"{name} is a notebook, not a lesson: wslab open {name}") from None
        raise UsageError(str(exc)) from None


def notebook_named(name: str) -> Path:
    """A notebook file, a workbook notebook by its short name (``capstone``, ``capstone2``) or
    (part of) its file's name (``testing``), or a lesson's notebook (``01``, ``echo``); a
    UsageError naming every choice."""
    if name.endswith(".ipynb"):
        if not Path(name).is_file():
            raise UsageError(f"no notebook file {name!r}")
        return Path(name)
    if name in workbook():
        return workbook()[name]
    matches = [path for path in workbook().values() if name and name in path.stem]
    if len(matches) == 1 and not name.isdigit():
        return matches[0]
    try:
        return find(name).notebook
    except UnknownLessonError:
        lessons = ", ".join(lesson.name for lesson in discover())
        raise UsageError(
            f"unknown lesson or notebook {name!r}; the lessons are: {lessons}; the notebooks: "
            f"{', '.join(workbook())} (see wslab list)"
        ) from None


def cmd_list(_: argparse.Namespace) -> int:
    import nbformat

    from lessons.course.book import budget_of, course_notebooks, title_of

    lessons = {lesson.notebook: lesson for lesson in discover()}
    names = {path: name for name, path in workbook().items()}
    print(f"{'name':<14}{'time (teaching + exercises)':<29}what")
    for path in course_notebooks():
        notebook = nbformat.read(path, as_version=4)
        minutes = [int(n) for n in re.findall(r"\d+", budget_of(notebook))]
        budget = f"{sum(minutes)} min ({' + '.join(map(str, minutes))})" if minutes else "-"
        lesson = lessons.get(path)
        name = lesson.name if lesson else names[path]
        print(f"{name:<14}{budget:<29}{lesson.title if lesson else title_of(notebook)}")
    print("open one with `wslab open NAME`; serve a lesson to a room with `wslab serve NN`")
    return 0


def parser() -> argparse.ArgumentParser:
    from lessons.cli import bench, book, classroom, drift, open, run, serve, student

    top = Parser(
        prog="wslab",
        description="wslab: a runnable, tested course on real-time WebSockets.",
        epilog="example:\n  wslab list\n  wslab open 01\n  wslab serve 01 --host 0.0.0.0",
        formatter_class=HelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = command(
        commands,
        "list",
        "list the lessons and notebooks the other commands take, with their time budgets",
        "wslab list",
    )
    listing.set_defaults(handler=cmd_list)
    for module in (open, serve, bench, run, student, book, classroom, drift):
        module.add(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # told by the command's own parser, as its other mistakes are
        getattr(args, "parser", top).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"wslab {args.command}: error: {exc}", file=sys.stderr)  # as argparse says it
        return 2


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
