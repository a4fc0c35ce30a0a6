"""The ``wslab`` command: list the lessons, serve one to a room, run notebooks headless."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lessons import WORKBOOK_DIR, Lesson, UnknownLessonError, discover, find

STUDENT_DIR = "wslab-student"


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


def cmd_list(_: argparse.Namespace) -> int:
    for lesson in discover():
        print(f"{lesson.name:<16} {lesson.title}")
    return 0


def _lesson(name: str) -> Lesson:
    try:
        return find(name)
    except UnknownLessonError as exc:
        raise UsageError(str(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from lessons.kit.server import bind_socket, page_urls, serve_forever

    lesson = _lesson(args.lesson)
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
    app = lesson.app()
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


def _notebooks(names: Sequence[str]) -> list[Path]:
    if names:
        return [_lesson(name).notebook for name in names]
    return [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))


def _progress(label: str, done: int, total: int, width: int = 24) -> None:
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(f"\r  {label:<40} [{bar}] {done}/{total} cells")
    sys.stderr.flush()


def cmd_run(args: argparse.Namespace) -> int:
    from lessons.kit.notebooks import run_notebook

    notebooks = _notebooks(args.lessons)
    interactive = sys.stderr.isatty()
    failures = 0
    for path in notebooks:
        label = f"{path.parent.name}/{path.name}"
        if not path.is_file():
            print(f"✗ {label:<40} missing")
            failures += 1
            continue
        hook = (
            (lambda done, total, label=label: _progress(label, done, total))
            if interactive
            else None
        )
        result = run_notebook(path, cell_timeout=args.cell_timeout, on_cell=hook)
        if interactive:
            sys.stderr.write("\r\033[K")
        verdict = "ok" if result.ok else f"FAILED at code cell {result.failing_cell}"
        print(
            f"{'✓' if result.ok else '✗'} {label:<40} {result.seconds:6.1f}s  {verdict}", flush=True
        )
        if not result.ok:
            failures += 1
            print("  " + str(result.error).replace("\n", "\n  "))
    print(f"{len(notebooks) - failures} passed, {failures} failed")
    return 1 if failures else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from lessons.kit.bench import run_bench

    try:
        return run_bench(args.clients, args.messages, args.size, args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_student(args: argparse.Namespace) -> int:
    from lessons.kit.exercises import learner_copies

    dest = Path(args.dir)
    lessons = [_lesson(name) for name in args.lessons] if args.lessons else discover()
    workbook = None if args.lessons else WORKBOOK_DIR
    existing = [dest / lesson.name / lesson.notebook.name for lesson in lessons]
    if workbook is not None:
        existing += [dest / workbook.name / path.name for path in workbook.glob("*.ipynb")]
    if not args.force and any(path.exists() for path in existing):
        raise UsageError(f"{dest} already holds learner notebooks; --force overwrites them")
    for path in learner_copies(lessons, workbook, dest):
        print(f"wrote {path}")
    print(f"open them with: jupyter lab {dest}")
    print(f"check your answers with: wslab check LESSON --dir {dest}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from lessons.kit.exercises import check_answers

    lesson = _lesson(args.lesson)
    path = Path(args.dir) / lesson.name / lesson.notebook.name
    if not path.is_file():
        raise UsageError(f"no learner notebook at {path}: run `wslab student {args.dir}` first")
    print(f"checking {path} (this runs the whole notebook)…", flush=True)
    results = check_answers(path, cell_timeout=args.cell_timeout)
    for result in results:
        if result.passed:
            print(f"✓ exercise {result.exercise}")
        else:
            print(f"✗ exercise {result.exercise}: {result.problem}\n  hint: {result.hint}")
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="wslab", description="wslab: a runnable, tested course on real-time WebSockets."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list the lessons")
    listing.set_defaults(handler=cmd_list)

    serve = commands.add_parser("serve", help="serve a lesson's app and browser page")
    serve.add_argument("lesson", help="01, echo or 01_echo")
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a room")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--instances",
        type=int,
        default=1,
        help="N processes on consecutive ports sharing one Redis (lesson 05)",
    )
    serve.set_defaults(handler=cmd_serve)

    bench = commands.add_parser("bench", help="fan-out benchmark on loopback (bounded)")
    bench.add_argument("--clients", type=int, default=20)
    bench.add_argument("--messages", type=int, default=300)
    bench.add_argument("--size", type=int, default=16384, help="bytes per message")
    bench.add_argument("--timeout", type=float, default=5.0, help="seconds per scenario")
    bench.set_defaults(handler=cmd_bench)

    run = commands.add_parser("run", help="execute lesson notebooks headless")
    run.add_argument("lessons", nargs="*", help="lessons to run (default: every notebook)")
    run.add_argument("--cell-timeout", type=float, default=180, help="seconds per cell")
    run.set_defaults(handler=cmd_run)

    student = commands.add_parser("student", help="write learner copies without solutions")
    student.add_argument("dir", nargs="?", default=STUDENT_DIR, help=f"default: {STUDENT_DIR}")
    student.add_argument(
        "--lesson",
        dest="lessons",
        action="append",
        default=[],
        help="only this lesson (repeatable)",
    )
    student.add_argument("--force", action="store_true", help="overwrite existing copies")
    student.set_defaults(handler=cmd_student)

    check = commands.add_parser("check", help="check the exercises of a learner copy")
    check.add_argument("lesson", help="01, echo or 01_echo")
    check.add_argument("--dir", default=STUDENT_DIR, help=f"default: {STUDENT_DIR}")
    check.add_argument("--cell-timeout", type=float, default=180, help="seconds per cell")
    check.set_defaults(handler=cmd_check)
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
