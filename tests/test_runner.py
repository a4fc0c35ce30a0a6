"""The headless runner (`wslab run`, CI): what it reports when a notebook fails, and what it
leaves behind (nothing). The course's own notebooks are run in test_notebooks.py."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lessons.cli import main
from lessons.kit.notebooks import RAISES, run_notebook


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


def test_book_refuses_nothing_silently_when_a_notebook_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notebook that fails is reported, and no half-built book is written."""
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), broken)
    monkeypatch.setattr("lessons.course.book.course_notebooks", lambda: [broken])
    assert main(["book", str(tmp_path / "out")]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
