"""Learner copies of the notebooks, and checking a learner's answers.

In a lesson notebook, an exercise is a code cell tagged ``solution`` followed by a cell
tagged ``check``. CI executes the notebooks with their solutions. ``learner_copies``
writes copies whose solution cells are replaced by a stub (the check cells stay), and
``check_answers`` runs a learner's copy and reports each check cell.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from lessons import Lesson
from lessons.kit.notebooks import code_cells, execute

SOLUTION = "solution"
CHECK = "check"
STUB = "# Your answer here: see the exercise above, then run the check cell below.\n"
_NOT_COPIED = shutil.ignore_patterns("test_*.py", "conftest.py", "__pycache__", "*.pyc")


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


def without_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose solution cells hold only a stub."""
    learner = copy.deepcopy(notebook)
    for cell in code_cells(learner):
        if SOLUTION in _tags(cell):
            cell.source = cell.metadata.get("wslab", {}).get("stub", STUB)
            cell.outputs = []
            cell.execution_count = None
    return learner


def learner_copies(lessons: list[Lesson], workbook: Path | None, dest: Path) -> list[Path]:
    """Copy each lesson folder (without its tests), and the ``workbook`` folder if given, to
    ``dest``, with every notebook's solutions removed. Returns the notebooks written."""
    folders = [(lesson.path, dest / lesson.name) for lesson in lessons]
    if workbook is not None:
        folders.append((workbook, dest / workbook.name))
    written = []
    for source, target in folders:
        shutil.copytree(source, target, ignore=_NOT_COPIED, dirs_exist_ok=True)
        written += sorted(target.glob("*.ipynb"))
    for path in written:
        nbformat.write(without_solutions(nbformat.read(path, as_version=4)), path)
    return written


@dataclass
class CheckResult:
    """One check cell of a learner's notebook."""

    exercise: int
    passed: bool
    problem: str = ""
    hint: str = ""


def _hint(ename: str, evalue: str) -> str:
    if ename == "NameError":
        return "something the check uses is not defined yet: write your answer and run its cell"
    if ename == "AssertionError":
        return "your answer runs, but gives a different result: read the message above"
    return "the check failed with an error: run your answer cell on its own and read its output"


def check_answers(path: Path, cell_timeout: float = 120) -> list[CheckResult]:
    """Run the notebook at ``path`` (errors allowed) and report each check cell."""
    notebook = nbformat.read(path, as_version=4)
    execute(notebook, path.parent, cell_timeout=cell_timeout, allow_errors=True)
    results = []
    checks = [cell for cell in code_cells(notebook) if CHECK in _tags(cell)]
    for number, cell in enumerate(checks, start=1):
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if not errors:
            results.append(CheckResult(number, True))
            continue
        ename, evalue = errors[0].ename, errors[0].evalue
        hint = cell.metadata.get("wslab", {}).get("hint") or _hint(ename, evalue)
        results.append(CheckResult(number, False, f"{ename}: {evalue}", hint))
    return results
