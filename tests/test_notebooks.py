"""Every notebook runs top to bottom headless, and is stored without outputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lessons import WORKBOOK_DIR, Lesson, discover
from lessons.kit.notebooks import RAISES, outputs_stored, run_notebook

NOTEBOOKS = [lesson.notebook for lesson in discover()] + sorted(WORKBOOK_DIR.glob("*.ipynb"))
IDS = [f"{path.parent.name}/{path.name}" for path in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.xdist_group("notebooks")  # one worker runs them all: the book reuses its runs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_headless_and_its_checks_fail_every_wrong_answer(
    path: Path, executed: Callable[[Path], Any]
) -> None:
    """CI runs the solutions (they must pass); then, in the same kernel, each exercise is
    tried with no answer and with each plausible wrong answer (they must fail)."""
    result, probes = executed(path).result, executed(path).probes
    where = f"{path.parent.name}/{path.name}, code cell {result.failing_cell}"
    assert result.ok, f"{where}: {result.error}"
    passed = [f"exercise {p.exercise} with {p.answer}" for p in probes if not p.failed]
    assert not passed, f"checks that pass what they should catch: {passed}"


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


@pytest.mark.timeout(120)
def test_processes_started_by_a_failing_notebook_stop_with_its_kernel(tmp_path: Path) -> None:
    """A failed cell leaves no subprocess server or Redis running once the kernel is gone."""
    pids = tmp_path / "pids"
    result = run_notebook(
        _write(
            tmp_path,
            "from lessons import find\n"
            "from lessons.kit import SubprocessServer\n"
            "from lessons.kit.redis_server import RedisServer\n"
            "server = SubprocessServer(find('01').app_path).start()\n"
            "redis_server = RedisServer().start()\n"
            "pids = f'{server.process.pid} {redis_server.process.pid}'\n"
            f"open({str(pids)!r}, 'w').write(pids)",
            "raise RuntimeError('a learner broke a cell')",
        )
    )
    assert not result.ok
    for pid in pids.read_text().split():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z", f"process {pid} survived"


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
