"""Every notebook runs top to bottom headless, and is stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lessons import WORKBOOK_DIR, Lesson, discover
from lessons.kit.notebooks import RAISES, outputs_stored, run_notebook

NOTEBOOKS = [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))
IDS = [f"{path.parent.name}/{path.name}" for path in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_headless(path: Path) -> None:
    result = run_notebook(path, cell_timeout=180)
    where = f"{path.parent.name}/{path.name}, code cell {result.failing_cell}"
    assert result.ok, f"{where}: {result.error}"


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


def _write(tmp_path: Path, *sources: str, tags: list[str] | None = None) -> Path:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    if tags is not None:
        cells[-1].metadata["tags"] = tags
    path = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.timeout(120)
def test_runner_reports_the_failing_cell(tmp_path: Path) -> None:
    result = run_notebook(_write(tmp_path, "x = 1", "1 / 0", "print('never')"))
    assert not result.ok and result.failing_cell == 2
    assert "ZeroDivisionError" in str(result.error)


@pytest.mark.timeout(120)
def test_runner_requires_a_tagged_cell_to_really_raise(tmp_path: Path) -> None:
    stale = run_notebook(_write(tmp_path, "x = 1", "x + 1", tags=[RAISES]))
    assert not stale.ok and "raised nothing" in str(stale.error)
    honest = run_notebook(_write(tmp_path, "x = 1", "x / 0", tags=[RAISES]))
    assert honest.ok, honest.error


@pytest.mark.timeout(120)
def test_runner_supports_top_level_await(tmp_path: Path) -> None:
    result = run_notebook(_write(tmp_path, "import asyncio", "await asyncio.sleep(0)"))
    assert result.ok, result.error
