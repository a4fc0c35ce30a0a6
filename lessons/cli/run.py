"""``wslab run``: execute notebooks headless, the way CI does."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lessons import WORKBOOK_DIR, discover
from lessons.cli import command, notebook_named, seconds


def notebooks_named(names: Sequence[str]) -> list[Path]:
    """The notebooks named, or every notebook in course order."""
    if names:
        return [notebook_named(name) for name in names]
    return [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))


def progress(label: str, done: int, total: int, width: int = 24) -> None:
    """Redraw a one-line progress bar on stderr."""
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(f"\r  {label:<40} [{bar}] {done}/{total} cells")
    sys.stderr.flush()


def cmd_run(args: argparse.Namespace) -> int:
    from lessons.kit.notebooks import run_notebook

    notebooks = notebooks_named(args.lessons)
    interactive = sys.stderr.isatty()
    failures = 0
    for path in notebooks:
        label = f"{path.parent.name}/{path.name}"
        if not path.is_file():
            print(f"✗ {label:<40} missing")
            failures += 1
            continue
        hook = (
            (lambda done, total, label=label: progress(label, done, total)) if interactive else None
        )
        result = run_notebook(path, cell_timeout=args.cell_timeout, on_cell=hook)
        if interactive:
            sys.stderr.write("\r\033[K")
        number, seconds = result.slowest
        verdict = (
            f"ok, slowest cell {number} ({seconds:.1f}s)"
            if result.ok
            else f"FAILED at code cell {result.failing_cell}"
        )
        print(
            f"{'✓' if result.ok else '✗'} {label:<40} {result.seconds:6.1f}s  {verdict}", flush=True
        )
        if not result.ok:
            failures += 1
            print("  " + str(result.error).replace("\n", "\n  "))
    print(f"{len(notebooks) - failures} passed, {failures} failed")
    return 1 if failures else 0


def add(commands: Any) -> None:
    run = command(
        commands,
        "run",
        "execute notebooks headless, as CI does, and report each one's time and slowest cell",
        "wslab run 01 capstone capstone2",
    )
    run.add_argument(
        "lessons",
        nargs="*",
        help="lessons (01, echo), workbook notebooks (capstone, capstone2, testing) or .ipynb "
        "files (default: every notebook)",
    )
    run.add_argument("--cell-timeout", type=seconds, default=180, help="seconds per cell")
    run.set_defaults(handler=cmd_run)
