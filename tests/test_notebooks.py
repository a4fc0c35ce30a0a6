"""Every notebook runs top to bottom headless, and is stored without outputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lessons import WORKBOOK_DIR, Lesson, discover
from lessons.kit.notebooks import outputs_stored

NOTEBOOKS = [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))
IDS = [f"{path.parent.name}/{path.name}" for path in NOTEBOOKS]


class _Run:
    """One notebook's run: a class of its own per notebook (``TestRun_*`` below), so that
    each is a unit of work of its own for xdist's ``--dist loadscope`` (pyproject.toml):
    the notebooks spread over the workers, and every other test file is one unit."""

    path: Path

    @pytest.mark.slow
    @pytest.mark.timeout(900)
    def test_runs_headless_and_its_checks_fail_every_wrong_answer(
        self, executed: Callable[[Path], Any]
    ) -> None:
        """CI runs the solutions (they must pass); then, in the same kernel, each exercise
        is tried with no answer and with each plausible wrong answer (they must fail, each
        wrong answer with a message that points at its mistake)."""
        path = self.path
        result, probes = executed(path).result, executed(path).probes
        where = f"{path.parent.name}/{path.name}, code cell {result.failing_cell}"
        assert result.ok, f"{where}: {result.error}"
        passed = [f"exercise {p.exercise} with {p.answer}" for p in probes if not p.failed]
        assert not passed, f"checks that pass what they should catch: {passed}"
        unpointed = [
            f"exercise {p.exercise} with {p.answer}: {p.output!r} lacks {p.expect!r}"
            for p in probes
            if p.failed and not p.pointed
        ]
        assert not unpointed, f"checks whose message misses the mistake: {unpointed}"


for _path, _id in zip(NOTEBOOKS, IDS, strict=True):
    _name = "TestRun_" + re.sub(r"\W", "_", _id.removesuffix(".ipynb"))
    globals()[_name] = type(_name, (_Run,), {"path": _path})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    assert outputs_stored(path) == [], "clear the outputs before committing"


@pytest.mark.parametrize("lesson", discover(), ids=lambda lesson: lesson.name)
def test_lesson_notebook_has_objectives_exercises_and_key_points(lesson: Lesson) -> None:
    notebook = nbformat.read(lesson.notebook, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "Objectives" in text and "Key points" in text
    checks = [c for c in notebook.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) >= 2, "at least two exercises, each with a check cell"


ROUTE = re.compile(r"^\s*@\w+\.(websocket|get|post|put|delete)\(", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_shows_app_code_from_files_instead_of_retyping_it(path: Path) -> None:
    """Only exercise solutions write routes in a cell; lesson code is shown with show()."""
    notebook = nbformat.read(path, as_version=4)
    retyped = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and "solution" not in cell.metadata.get("tags", [])
        and ROUTE.search(cell.source)
    ]
    assert not retyped, f"cells {retyped} define routes: show them from the lesson's file"
