"""How long a notebook's core path takes a learner: the one formula the stated budgets are
held to (``tests/test_conventions.py``), described in ``docs/authoring.md``.

It counts learning, not reading speed: the prose, each code cell run and its output read,
the listings it prints, a pause at each prediction prompt, each glossary term the course
meets for the first time, and each exercise (its statement, writing the answer, reading the
check). It was calibrated on the course's notebooks against a careful reading by a learner
who knows ``async``/``await`` and is new to WebSockets. The core path is every cell before
the first ``## Optional`` heading.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from lessons import ROOT_DIR
from lessons.course.exercises import CHECK, SOLUTION
from lessons.kit.show import _select

# Calibrated on the course's notebooks as they were at issue 25 against a careful reading by
# that learner (01: 55 min, 02: 85, 03: 85, 04: 90, 05: 95, 06: 80, capstone: 105, testing:
# 70); the formula gives each within 10%. tests/test_conventions.py keeps that table.
WORDS_PER_MINUTE = 80  # studying prose and diagrams, not skimming them
CELL_MINUTES = 1.0  # running a code cell and reading what it prints
CODE_LINES_PER_MINUTE = 5  # understanding the cell's own code
LISTING_LINES_PER_MINUTE = 30  # reading what show() and show_diff() print
PREDICTION_MINUTES = 1.0  # answering a **Predict:** prompt before running the cell
TERM_MINUTES = 0.25  # a glossary term met for the first time in the course
STATEMENT_WORDS_PER_MINUTE = 5  # an exercise: its statement is the spec, every word is work

OPTIONAL = re.compile(r"^##\s+Optional\b", re.MULTILINE)
PREDICTION = re.compile(r"\*\*Predict\b")
BUDGET = re.compile(r"Teaching:\s*(\d+)\s*min\.\s*Exercises:\s*(\d+)\s*min\.")
GLOSSARY = ROOT_DIR / "docs" / "glossary.md"


@dataclass(frozen=True)
class Estimate:
    """Minutes of a notebook's core path: its teaching and its exercises."""

    teaching: float
    exercises: float

    @property
    def total(self) -> float:
        return self.teaching + self.exercises


def stated_budget(notebook: nbformat.NotebookNode) -> tuple[int, int] | None:
    """The (teaching, exercises) minutes the first markdown cell states, if it does."""
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    match = BUDGET.search(first)
    return (int(match[1]), int(match[2])) if match else None


def core_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The cells before the first ``## Optional`` heading."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and OPTIONAL.search(cell.source):
            return notebook.cells[:index]
    return list(notebook.cells)


def glossary_terms() -> list[str]:
    """The terms docs/glossary.md defines (its bold entry names, split at " / ")."""
    text = GLOSSARY.read_text(encoding="utf-8")
    names = re.findall(r"^\*\*(.+?)\*\*", text, re.MULTILINE)
    return [term.strip() for name in names for term in name.split(" / ") if term.strip()]


def terms_in(text: str, terms: Iterable[str]) -> set[str]:
    """The terms that ``text`` uses (whole words, any case, a plural allowed)."""
    return {t for t in terms if re.search(rf"(?<!\w){re.escape(t)}s?(?!\w)", text, re.I)}


def _path_of(node: ast.expr) -> str | None:
    """The file a show() argument names: "app.py", or FOLDER / "app.py" (as "app.py")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        right = _path_of(node.right)
        left = _path_of(node.left)
        return f"{left}/{right}" if left and right else right
    return None


def _file(name: str, folders: tuple[Path, ...]) -> Path | None:
    return next((f / name for f in folders if (f / name).is_file()), None)


def listing_lines(source: str, folders: tuple[Path, ...]) -> int:
    """How many lines the cell prints with show() and show_diff() (a diff counts whole)."""
    try:
        tree = ast.parse(source.replace("await ", ""))
    except SyntaxError:
        return 0
    total = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or not node.args:
            continue
        names = [_path_of(a) for a in node.args]
        files = [_file(n, folders) if n else None for n in names]
        if node.func.id == "show" and files[0]:
            lines = files[0].read_text(encoding="utf-8").splitlines()
            try:
                first, stop = _select(lines, *[*names[1:3], None, None][:2])
            except ValueError:
                continue
            total += stop - first
        elif node.func.id == "show_diff" and len(files) == 2 and all(files):
            a, b = (f.read_text(encoding="utf-8").splitlines() for f in files)  # type: ignore[union-attr]
            total += len(list(difflib.unified_diff(a, b, lineterm="")))
    return total


def _tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.metadata.get("tags", []))


def cell_minutes(
    cells: list[nbformat.NotebookNode], folders: tuple[Path, ...], known: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """Each cell's minutes, and whether they count as "teaching" or "exercises". An exercise
    is its statement (the last markdown cell before a ``solution`` cell), read and then
    worked; the solution and check cells add nothing of their own."""
    statements = set()
    for index, cell in enumerate(cells):
        if SOLUTION in _tags(cell):
            before = [i for i in range(index) if cells[i].cell_type == "markdown"]
            statements.update(before[-1:])
    terms, seen = glossary_terms(), set(known)
    minutes = []
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            words = len(cell.source.split())
            new = terms_in(cell.source, terms) - seen
            seen |= new
            spent = words / WORDS_PER_MINUTE + len(new) * TERM_MINUTES
            spent += len(PREDICTION.findall(cell.source)) * PREDICTION_MINUTES
            if index in statements:
                minutes.append(("exercises", spent + words / STATEMENT_WORDS_PER_MINUTE))
                continue
        elif {SOLUTION, CHECK} & _tags(cell):
            spent = 0.0
        else:
            spent = CELL_MINUTES + len(cell.source.splitlines()) / CODE_LINES_PER_MINUTE
            spent += listing_lines(cell.source, folders) / LISTING_LINES_PER_MINUTE
        minutes.append(("teaching", spent))
    return minutes


def folders_of(notebook: Path) -> tuple[Path, ...]:
    """Where the notebook's show() calls find files: its own folder, and the folder of its
    files (``notebooks/testing/`` for ``testing_your_app.ipynb``)."""
    own = notebook.parent / notebook.stem.split("_")[0]
    return (notebook.parent, own) if own.is_dir() else (notebook.parent,)


def estimate(notebook: Path, known: Iterable[str] = ()) -> Estimate:
    """The minutes of the notebook's core path. ``known`` holds the glossary terms that the
    notebooks before it in the course already used."""
    cells = core_cells(nbformat.read(notebook, as_version=4))
    minutes = cell_minutes(cells, folders_of(notebook), known)
    return Estimate(
        sum(m for kind, m in minutes if kind == "teaching"),
        sum(m for kind, m in minutes if kind == "exercises"),
    )


def course_estimates(notebooks: list[Path]) -> dict[Path, Estimate]:
    """Each notebook's estimate, taken in course order: a term counts where it first appears."""
    known: set[str] = set()
    estimates = {}
    for notebook in notebooks:
        estimates[notebook] = estimate(notebook, known)
        prose = (c.source for c in core_cells(nbformat.read(notebook, as_version=4)))
        known |= terms_in("\n".join(prose), glossary_terms())
    return estimates


def report(notebooks: list[Path]) -> str:
    """One line per notebook: what it states, and what the formula estimates."""
    lines = []
    for notebook, found in course_estimates(notebooks).items():
        stated = stated_budget(nbformat.read(notebook, as_version=4))
        said = f"{stated[0]} + {stated[1]} min" if stated else "no budget"
        name = notebook.relative_to(ROOT_DIR).as_posix()
        lines.append(
            f"{name:<42} states {said:<14} estimate {found.teaching:.0f} + "
            f"{found.exercises:.0f} = {found.total:.0f} min"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from lessons.course.book import course_notebooks

    print(report(course_notebooks()))
