"""Copies of the course for learners, and checking a learner's answers.

In a lesson notebook, an exercise is a code cell tagged ``solution`` followed by a cell
tagged ``check``. CI executes the notebooks with their solutions.

A copy mirrors the repository (``lessons/NN_slug/``, ``notebooks/``, ``docs/``), so every
relative link resolves in it. Its notebooks carry no outputs and no execution counts, and
the lessons' own tests (their ``tests/`` folders) and JupyterLab's checkpoints are never
copied; their ``pitfalls/`` are. ``learner_copies``
(``wslab student``) also replaces each solution by a stub (the check cells stay);
``working_copy`` (``wslab open``) keeps the lessons as they are taught and never overwrites
a file the learner already has. ``check_answers`` runs a learner's copy and reports each
check cell.
"""

from __future__ import annotations

import ast
import copy
import itertools
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from lessons import ROOT_DIR, TESTS, WORKBOOK_DIR, Lesson, discover
from lessons.kit.notebooks import NotebookClient, code_cells, execute, run_source

SOLUTION = "solution"
CHECK = "check"
STUB = "# Your answer here: see the exercise above, then run the check cell below.\n"
DOCS_DIR = ROOT_DIR / "docs"
EXERCISE_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+)", re.MULTILINE)
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")
_NOT_COPIED_FROM_LESSONS = shutil.ignore_patterns(
    TESTS, "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache"
)


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs, execution counts or execution timings."""
    fresh = copy.deepcopy(notebook)
    for cell in code_cells(fresh):
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return fresh


def without_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose solution cells hold only a stub."""
    learner = copy.deepcopy(notebook)
    for cell in code_cells(learner):
        if SOLUTION in _tags(cell):
            cell.source = cell.metadata.get("wslab", {}).get("stub", STUB)
            cell.outputs = []
            cell.execution_count = None
    return learner


def _for_learners(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return cleared(without_solutions(notebook))


def learner_path(dest: Path, path: Path) -> Path:
    """Where a file or folder of the course lands in a learner copy at ``dest``: the same
    place relative to ``dest`` as to the repository, so every relative link still works."""
    return dest / path.resolve().relative_to(ROOT_DIR)


def _copy(
    lessons: list[Lesson],
    folders: list[Path],
    dest: Path,
    notebook: Callable[[nbformat.NotebookNode], nbformat.NotebookNode],
    keep_existing: bool = False,
) -> list[Path]:
    """Copy the ``lessons`` (without their tests) and other ``folders`` of the course to their
    places in ``dest``, each notebook passed through ``notebook``; with ``keep_existing``, a
    file already in ``dest`` is left as it is. Returns the notebooks written."""
    written: list[Path] = []

    def copy_file(source: str, target: str) -> None:
        if keep_existing and Path(target).exists():
            return
        if source.endswith(".ipynb"):
            nbformat.write(notebook(nbformat.read(source, as_version=4)), target)
            written.append(Path(target))
        else:
            shutil.copy2(source, target)

    # A lesson's own tests are the course's, not the learner's; the workbook's tests (the
    # testing notebook's) are what the learner studies, so they are copied.
    sources = [(lesson.path, _NOT_COPIED_FROM_LESSONS) for lesson in lessons]
    for source, ignore in sources + [(folder, _NOT_COPIED) for folder in folders]:
        target = learner_path(dest, source)
        shutil.copytree(source, target, ignore=ignore, copy_function=copy_file, dirs_exist_ok=True)
    return sorted(written)


def learner_copies(lessons: list[Lesson], workbook: Path | None, dest: Path) -> list[Path]:
    """Copy each lesson folder (without its tests), the ``workbook`` folder if given, and
    ``docs/`` (so the notebooks' links to the glossary and the pitfall index resolve) to
    ``dest``, with every notebook's outputs and solutions removed. Returns the notebooks
    written."""
    folders = [DOCS_DIR] + ([workbook] if workbook is not None else [])
    return _copy(lessons, folders, dest, _for_learners)


def working_copy(dest: Path) -> list[Path]:
    """Copy the whole course to ``dest`` for a learner to work in: every notebook as taught
    (with its solutions) but without outputs, so that every link resolves. A file already
    in ``dest`` is never overwritten: it holds the learner's work. Returns the notebooks
    written this time."""
    return _copy(discover(), [WORKBOOK_DIR, DOCS_DIR], dest, cleared, keep_existing=True)


@dataclass
class CheckResult:
    """One check cell of a learner's notebook."""

    exercise: int
    passed: bool
    problem: str = ""
    hint: str = ""
    named: str = ""  # the number its heading gives it, if any (part 2 of the capstone: "3")

    @property
    def label(self) -> str:
        """``exercise 3``: as the notebook's heading numbers it, else by its place."""
        return f"exercise {self.named or self.exercise}"


def headed_checks(notebook: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, str]]:
    """Each check cell, with the number of the ``## Exercise N`` heading above it (or "")."""
    checks, named = [], ""
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and (heading := EXERCISE_HEADING.search(cell.source)):
            named = heading[1]
        elif cell.cell_type == "code" and CHECK in _tags(cell):
            checks.append((cell, named))
    return checks


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
    for number, (cell, named) in enumerate(headed_checks(notebook), start=1):
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if not errors:
            results.append(CheckResult(number, True, named=named))
            continue
        ename, evalue = errors[0].ename, errors[0].evalue
        hint = cell.metadata.get("wslab", {}).get("hint") or _hint(ename, evalue)
        results.append(CheckResult(number, False, f"{ename}: {evalue}", hint, named))
    return results


@dataclass
class Probe:
    """One wrong answer (or none) put in place of a solution, whether its check failed, and
    whether the failure's message names the mistake (holds ``expect``)."""

    exercise: int
    answer: str
    failed: bool
    output: str = ""
    expect: str = ""

    @property
    def pointed(self) -> bool:
        """The check failed with a message that points at this answer's mistake."""
        return self.failed and self.expect in self.output


@dataclass
class WrongAnswer:
    """A plausible wrong answer from a solution cell's ``wslab.wrong``: its source, and a
    part of the message its check must fail with (``expect``: what points at the mistake)."""

    source: str
    expect: str = ""


def wrong_answers(solution: nbformat.NotebookNode) -> list[WrongAnswer]:
    """The wrong answers of a solution cell; an entry is ``{"source": ..., "expect": ...}``,
    or a plain string (a source, with no expected message)."""
    entries = solution.metadata.get("wslab", {}).get("wrong", [])
    return [
        WrongAnswer(entry) if isinstance(entry, str) else WrongAnswer(**entry) for entry in entries
    ]


def exercises(notebook: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """(solution index, check index) of each exercise: a solution cell, then its check cell."""
    cells = notebook.cells
    code = [i for i, cell in enumerate(cells) if cell.cell_type == "code"]
    return [
        (i, j)
        for i, j in itertools.pairwise(code)
        if SOLUTION in _tags(cells[i]) and CHECK in _tags(cells[j])
    ]


def defined_names(source: str) -> list[str]:
    """The names a cell binds at its top level (functions, classes, assignments, imports)."""
    if source.startswith("%%"):  # a cell magic (the capstone's %%add_to_app): Python follows
        source = source.partition("\n")[2]
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(source, "<cell>", "exec", flags=flags)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        else:
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.append(child.id)
    return sorted(set(names))


PROBE_SCALE = 0.3
_SHORTEN = f"""import os as _os
_probe_scale = _os.environ.get("WSLAB_TIMEOUT_SCALE")
_os.environ["WSLAB_TIMEOUT_SCALE"] = str(float(_probe_scale or 1) * {PROBE_SCALE})"""
_RESTORE = """if _probe_scale is None:
    _os.environ.pop("WSLAB_TIMEOUT_SCALE")
else:
    _os.environ["WSLAB_TIMEOUT_SCALE"] = _probe_scale"""


async def probe_exercises(client: NotebookClient) -> list[Probe]:
    """After a notebook has run with its solutions, try each exercise again in the same kernel
    with no answer (the learner's stub) and with each plausible wrong answer from the
    solution cell's metadata (``wslab.wrong``): every one of them must make the check fail,
    each wrong answer with a message that holds its ``expect``.
    The solution is run again afterwards, so later exercises see the state they expect.

    Most wrong answers fail by waiting out a deadline (a message that never comes), so the
    kit's timeouts are scaled by ``PROBE_SCALE`` meanwhile: a wrong answer fails sooner, and
    a solution never runs its check under the shorter deadlines."""
    cells = client.nb.cells
    probes = []
    await run_source(client, _SHORTEN)
    for number, (solution, check) in enumerate(exercises(client.nb), start=1):
        stub = cells[solution].metadata.get("wslab", {}).get("stub", STUB)
        answers = [("no answer", WrongAnswer(stub))]
        wrongs = wrong_answers(cells[solution])
        answers += [(f"wrong answer {k}", wrong) for k, wrong in enumerate(wrongs, start=1)]
        forget = f"for _name in {defined_names(cells[solution].source)!r}:\n"
        forget += "    globals().pop(_name, None)"
        for label, answer in answers:
            await run_source(client, forget)
            await run_source(client, answer.source)
            ran = await run_source(client, cells[check].source)
            errors = [out for out in ran.outputs if out.output_type == "error"]
            shown = f"{errors[0].ename}: {errors[0].evalue}" if errors else "the check passed"
            probes.append(Probe(number, label, bool(errors), shown, answer.expect))
        await run_source(client, cells[solution].source)
    await run_source(client, _RESTORE)
    return probes
