"""Learner copies drop the solutions and keep the checks; `wslab check` tells them apart."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest

from lessons import WORKBOOK_DIR, Lesson, discover, find
from lessons.cli import main
from lessons.kit.exercises import (
    CHECK,
    SOLUTION,
    STUB,
    CheckResult,
    check_answers,
    learner_copies,
)
from lessons.kit.notebooks import code_cells

LESSONS = discover()


def _tagged(path: Path, tag: str) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in code_cells(notebook) if tag in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.name for lesson in LESSONS])
def test_learner_copy_keeps_checks_and_files_and_drops_solutions(lesson, tmp_path: Path) -> None:
    [copy] = learner_copies([lesson], None, tmp_path)
    assert [c.source for c in _tagged(copy, CHECK)] == [
        c.source for c in _tagged(lesson.notebook, CHECK)
    ]
    originals, solutions = _tagged(lesson.notebook, SOLUTION), _tagged(copy, SOLUTION)
    assert solutions and len(solutions) == len(originals)
    for original, learner in zip(originals, solutions, strict=True):
        assert learner.source == original.metadata.get("wslab", {}).get("stub", STUB)
        assert learner.source != original.source
    assert (copy.parent / "app.py").read_text() == lesson.app_path.read_text()
    assert not list(copy.parent.glob("test_*.py"))


@pytest.fixture(scope="module")
def unanswered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[CheckResult]]:
    """Every lesson's learner copy, run with no answer filled in, all at once.

    Whatever the timing, a check with no answer fails, so these runs may share the machine:
    each notebook runs in its own process and kernel, on its own ports.
    """
    folder = tmp_path_factory.mktemp("learner")
    copies = learner_copies(LESSONS, None, folder)
    with ProcessPoolExecutor(len(copies), mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(check_answers, copies)
        return {copy.parent.name: result for copy, result in zip(copies, results, strict=True)}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.name for lesson in LESSONS])
def test_every_check_fails_in_a_learner_copy_with_no_answers(
    lesson: Lesson, unanswered: dict[str, list[CheckResult]]
) -> None:
    """The other half, that the solutions pass, is each notebook's own headless run."""
    results = unanswered[lesson.name]
    assert len(results) == len(_tagged(lesson.notebook, CHECK))
    passing = [result.exercise for result in results if result.passed]
    assert not passing, f"checks that pass with no answer: {passing}"
    assert all(result.hint for result in results)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_check_answers_passes_a_copy_with_the_solutions(tmp_path: Path) -> None:
    lesson = find("01")
    [learner] = learner_copies([lesson], None, tmp_path)
    nbformat.write(nbformat.read(lesson.notebook, as_version=4), learner)  # answers filled in
    results = check_answers(learner)
    assert results and all(result.passed for result in results)


def test_learner_copy_of_the_workbook_keeps_the_capstone_app(tmp_path: Path) -> None:
    written = learner_copies([], WORKBOOK_DIR, tmp_path)
    assert {path.name for path in written} == {p.name for p in WORKBOOK_DIR.glob("*.ipynb")}
    assert (tmp_path / "notebooks" / "capstone" / "app.py").is_file()


def test_student_refuses_to_overwrite_a_learners_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["student", str(tmp_path), "--lesson", "01"]) == 0
    assert main(["student", str(tmp_path), "--lesson", "01"]) == 2
    assert "--force overwrites them" in capsys.readouterr().err
    assert main(["student", str(tmp_path), "--lesson", "01", "--force"]) == 0


def test_check_without_a_learner_copy_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "01", "--dir", str(tmp_path)]) == 2
    assert f"run `wslab student {tmp_path}` first" in capsys.readouterr().err
