"""The course's exercises as the classroom names them: a lesson's folder name (``01_echo``)
or a workbook notebook's stem (``capstone_1_board``), and its check cells in order."""

from __future__ import annotations

import json
from pathlib import Path

from lessons import WORKBOOK_DIR, discover

CHECK = "check"


def lesson_key(notebook: Path) -> str:
    """``01_echo`` for ``.../01_echo/lesson.ipynb``, the stem for a workbook notebook; the
    same in the course and in a learner's copy of it."""
    return notebook.parent.name if notebook.name == "lesson.ipynb" else notebook.stem


def check_cells(notebook: Path) -> list[tuple[str, str]]:
    """(source, hint) of each check cell of ``notebook``, in order: exercise 1, 2, ..."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        ("".join(cell["source"]), cell["metadata"].get("wslab", {}).get("hint", ""))
        for cell in cells
        if cell["cell_type"] == "code" and CHECK in cell["metadata"].get("tags", [])
    ]


def exercise_counts() -> dict[str, int]:
    """How many exercises each notebook of the course has (those with at least one)."""
    notebooks = [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))
    counts = {lesson_key(path): len(check_cells(path)) for path in notebooks}
    return {key: count for key, count in counts.items() if count}
