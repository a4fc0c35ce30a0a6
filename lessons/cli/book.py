"""``wslab book``: the course as a static site, every notebook executed, for reading and
projecting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lessons.cli import command, output_dir, seconds
from lessons.cli.run import progress

BOOK_DIR = "wslab-book"


def cmd_book(args: argparse.Namespace) -> int:
    from lessons.course.book import build, course_notebooks
    from lessons.kit.notebooks import run_notebook

    dest = Path(args.dir)
    interactive = sys.stderr.isatty()
    executed = {}
    failed = []
    for path in course_notebooks():
        label = f"{path.parent.name}/{path.name}"
        hook = (
            (lambda done, total, label=label: progress(label, done, total)) if interactive else None
        )
        result = run_notebook(path, cell_timeout=args.cell_timeout, on_cell=hook)
        if interactive:
            sys.stderr.write("\r\033[K")
        verdict = "executed" if result.ok else f"FAILED at code cell {result.failing_cell}"
        print(
            f"{'✓' if result.ok else '✗'} {label:<40} {result.seconds:6.1f}s  {verdict}", flush=True
        )
        if result.ok and result.notebook is not None:
            executed[path] = result.notebook
        else:
            failed.append(label)
            print("  " + str(result.error).replace("\n", "\n  "))
    if failed:
        print(f"wslab book: not written: {len(failed)} notebook(s) failed: {', '.join(failed)}")
        return 1
    pages = build(executed, dest, student=args.student)
    print(f"wrote {len(pages)} pages to {dest}: open {dest / 'index.html'} in a browser")
    return 0


def add(commands: Any) -> None:
    book = command(
        commands,
        "book",
        "execute every notebook and write the course as a static site, to read offline",
        "wslab book out/ && xdg-open out/index.html",
    )
    book.add_argument(
        "dir", nargs="?", type=output_dir, default=BOOK_DIR, help="the folder to write"
    )
    book.add_argument("--student", action="store_true", help="leave the exercise solutions out")
    book.add_argument("--cell-timeout", type=seconds, default=180, help="seconds per cell")
    book.set_defaults(handler=cmd_book)
