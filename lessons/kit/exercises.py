"""Copies of the course for learners, and checking a learner's answers.

In a lesson notebook, an exercise is a code cell tagged ``solution`` followed by a cell
tagged ``check``. CI executes the notebooks with their solutions.

A copy mirrors the repository's layout (``lessons/NN_slug/``, ``notebooks/``, ``docs/``), so
every relative link in the notebooks and the docs resolves in it. Its notebooks carry no
outputs and no execution counts, and tests and JupyterLab's checkpoints are never copied.
``learner_copies`` (``wslab student``) also replaces each solution by a stub (the check
cells stay); ``working_copy`` (``wslab open``) keeps the lesson as it is taught and never
overwrites a file the learner already has. ``check_answers`` runs a learner's copy and
reports each check cell.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lessons import ROOT_DIR, WORKBOOK_DIR, Lesson, discover

SOLUTION = "solution"
CHECK = "check"
STUB = "# Your answer here: see the exercise above, then run the check cell below.\n"
DOCS_DIR = ROOT_DIR / "docs"
_NOT_COPIED = shutil.ignore_patterns(
    "test_*.py", "conftest.py", "__pycache__", "*.pyc", ".ipynb_checkpoints"
)
# A notebook as its JSON (an nbformat NotebookNode is one too). Copies are made with the
# json module: importing nbformat costs seconds, and ``wslab open`` should start at once.
Notebook = dict[str, Any]


def _tags(cell: Notebook) -> list[str]:
    return list(cell["metadata"].get("tags", []))


def _code(notebook: Notebook) -> list[Notebook]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def cleared(notebook: Notebook) -> Notebook:
    """A copy of ``notebook`` without outputs, execution counts or execution timings."""
    fresh = copy.deepcopy(notebook)
    for cell in _code(fresh):
        cell["outputs"] = []
        cell["execution_count"] = None
        cell["metadata"].pop("execution", None)
    return fresh


def without_solutions(notebook: Notebook) -> Notebook:
    """A cleared copy of ``notebook`` whose solution cells hold only a stub."""
    learner = cleared(notebook)
    for cell in _code(learner):
        if SOLUTION in _tags(cell):
            cell["source"] = cell["metadata"].get("wslab", {}).get("stub", STUB)
    return learner


def copy_path(dest: Path, source: Path) -> Path:
    """Where ``source`` (a file or folder of the repository) lives in a copy at ``dest``."""
    return dest / source.resolve().relative_to(ROOT_DIR)


def _copy(
    folders: Iterable[Path],
    dest: Path,
    notebook: Callable[[Notebook], Notebook],
    keep_existing: bool,
) -> list[Path]:
    """Copy ``folders`` into ``dest`` with each notebook passed through ``notebook``.

    Returns the notebooks written; with ``keep_existing``, a file already there is left
    as it is (and not returned)."""
    written: list[Path] = []

    def copy_file(source: str, target: str) -> None:
        if keep_existing and Path(target).exists():
            return
        if source.endswith(".ipynb"):
            content = notebook(json.loads(Path(source).read_text(encoding="utf-8")))
            text = json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False)
            Path(target).write_text(text + "\n", encoding="utf-8")
            written.append(Path(target))
        else:
            shutil.copy2(source, target)

    for folder in folders:
        if folder.is_dir():
            shutil.copytree(
                folder,
                copy_path(dest, folder),
                ignore=_NOT_COPIED,
                copy_function=copy_file,
                dirs_exist_ok=True,
            )
    return sorted(written)


def learner_copies(lessons: list[Lesson], workbook: Path | None, dest: Path) -> list[Path]:
    """Copy each lesson folder, the ``workbook`` folder if given, and ``docs/`` to ``dest``,
    with every notebook's outputs and solutions removed. Returns the notebooks written."""
    folders = [lesson.path for lesson in lessons] + ([workbook] if workbook else []) + [DOCS_DIR]
    return _copy(folders, dest, without_solutions, keep_existing=False)


def working_copy(dest: Path) -> list[Path]:
    """Copy the whole course to ``dest`` for a learner to work in: every notebook as taught
    (with its solutions) but without outputs, so every link resolves. A file already in
    ``dest`` is never overwritten: it holds the learner's work. Returns the notebooks
    written this time."""
    folders = [lesson.path for lesson in discover()] + [WORKBOOK_DIR, DOCS_DIR]
    return _copy(folders, dest, cleared, keep_existing=True)


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
    import nbformat

    from lessons.kit.notebooks import execute

    notebook = nbformat.read(path, as_version=4)
    execute(notebook, path.parent, cell_timeout=cell_timeout, allow_errors=True)
    results = []
    checks = [cell for cell in _code(notebook) if CHECK in _tags(cell)]
    for number, cell in enumerate(checks, start=1):
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if not errors:
            results.append(CheckResult(number, True))
            continue
        ename, evalue = errors[0].ename, errors[0].evalue
        hint = cell.metadata.get("wslab", {}).get("hint") or _hint(ename, evalue)
        results.append(CheckResult(number, False, f"{ename}: {evalue}", hint))
    return results
