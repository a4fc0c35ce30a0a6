"""Show a lesson's code in a notebook by reading the file, never by retyping it; and its plots,
with matplotlib imported quietly (``pyplot``: lesson 01's plot and ``wslab bench --plot``)."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any


def _select(lines: list[str], start: str | None, end: str | None) -> tuple[int, int]:
    """Indexes of the first and one past the last selected line."""
    if start is None:
        return 0, len(lines)
    first = next((i for i, line in enumerate(lines) if start in line), None)
    if first is None:
        raise ValueError(f"no line contains {start!r}")
    if end is None:
        return first, len(lines)
    last = next((i for i in range(first + 1, len(lines)) if end in lines[i]), None)
    if last is None:
        raise ValueError(f"no line after {start!r} contains {end!r}")
    return first, last + 1


def show(path: str | Path, start: str | None = None, end: str | None = None) -> None:
    """Print ``path`` with line numbers, or the lines from the one containing ``start``
    to the one containing ``end`` (both included)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    first, stop = _select(lines, start, end)
    print(f"# {Path(path).name}")
    for number, line in enumerate(lines[first:stop], start=first + 1):
        print(f"{number:4d}  {line}")


def show_diff(broken: str | Path, fixed: str | Path) -> None:
    """Print the unified diff between a pitfall file and its fix."""
    a, b = Path(broken), Path(fixed)
    diff = difflib.unified_diff(
        a.read_text(encoding="utf-8").splitlines(),
        b.read_text(encoding="utf-8").splitlines(),
        a.name,
        b.name,
        lineterm="",
    )
    print("\n".join(diff))


def pyplot() -> Any:
    """matplotlib.pyplot, imported without the one-time font cache notice on stderr."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import matplotlib.pyplot as plt
    finally:
        logger.setLevel(level)
    return plt
