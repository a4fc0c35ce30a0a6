"""Learner copies drop the solutions and keep the checks; `wslab check` tells them apart."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lessons import PITFALLS, TESTS, WORKBOOK_DIR, discover, find
from lessons.cli import main
from lessons.course.exercises import (
    CHECK,
    SOLUTION,
    STUB,
    CheckResult,
    Probe,
    check_answers,
    defined_names,
    headed_checks,
    learner_copies,
    probe_exercises,
)
from lessons.kit.notebooks import NotebookClient, code_cells, run_notebook

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
    assert not (copy.parent / TESTS).exists() and not list(copy.parent.rglob("test_*.py"))
    assert (copy.parent / PITFALLS).is_dir()


def _exercise_notebook(tmp_path: Path, check: str, wrong: list[str | dict[str, str]]) -> Path:
    solution = nbformat.v4.new_code_cell("def double(x):\n    return 2 * x")
    solution.metadata.update({"tags": [SOLUTION], "wslab": {"wrong": wrong}})
    checker = nbformat.v4.new_code_cell(check)
    checker.metadata["tags"] = [CHECK]
    path = tmp_path / "exercise.ipynb"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), solution, checker]
    )
    nbformat.write(notebook, path)
    return path


def _probes(path: Path) -> list[Probe]:
    probes: list[Probe] = []

    async def probe(client: NotebookClient) -> None:
        probes.extend(await probe_exercises(client))

    assert run_notebook(path, after=probe).ok
    return probes


@pytest.mark.timeout(120)
def test_probes_report_a_check_that_lets_a_wrong_answer_pass(tmp_path: Path) -> None:
    lax = _exercise_notebook(tmp_path, "assert double(0) == 0", ["def double(x):\n    return x"])
    assert [(p.answer, p.failed) for p in _probes(lax)] == [
        ("no answer", True),
        ("wrong answer 1", False),
    ]
    strict = _exercise_notebook(tmp_path, "assert double(3) == 6", ["def double(x):\n    return x"])
    assert all(p.failed for p in _probes(strict))


@pytest.mark.timeout(120)
def test_probes_say_whether_a_checks_message_points_at_the_mistake(tmp_path: Path) -> None:
    check = "assert double(3) == 6, f'double(3) gave {double(3)}'\nassert double(-1) == -2"
    wrong = [
        {"source": "def double(x):\n    return x", "expect": "double(3) gave 3"},
        {"source": "def double(x):\n    return abs(2 * x)", "expect": "double(-1)"},
    ]
    probes = _probes(_exercise_notebook(tmp_path, check, wrong))
    assert [(p.answer, p.failed, p.pointed) for p in probes] == [
        ("no answer", True, True),  # a stub expects no message: failing is enough
        ("wrong answer 1", True, True),
        ("wrong answer 2", True, False),  # fails, but its message does not say why
    ]
    assert probes[1].expect == "double(3) gave 3" and "double(3) gave 3" in probes[1].output


def test_defined_names_sees_what_a_solution_binds() -> None:
    source = "import json\nfrom x import y as z\nasync def f(): pass\nclass C: pass\n"
    source += "a, b = 1, 2\nawait f()"
    assert defined_names(source) == ["C", "a", "b", "f", "json", "z"]


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
    testing = tmp_path / "notebooks" / "testing"
    assert (testing / "conftest.py").is_file() and list(testing.glob("test_*.py")), (
        "the testing notebook's test files are the learner's material"
    )


def test_student_copies_the_capstone_alone_and_says_how_to_open_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["student", str(tmp_path), "--lesson", "capstone"]) == 0
    assert f"wslab open capstone --dir {tmp_path}" in capsys.readouterr().out
    assert (tmp_path / "notebooks" / "capstone" / "app.py").is_file()
    assert main(["open", "capstone", "--no-lab", "--dir", str(tmp_path / "open")]) == 0
    assert "notebooks/capstone_1_board.ipynb" in capsys.readouterr().out
    assert main(["open", "capstone2", "--no-lab", "--dir", str(tmp_path / "open")]) == 0
    assert "notebooks/capstone_2_restart.ipynb" in capsys.readouterr().out


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


def test_wslab_check_names_an_exercise_as_its_heading_numbers_it() -> None:
    """Part 2 of the capstone holds exercises 3 and 4: `wslab check capstone2` says so, while
    the classroom keeps counting the notebook's checks from 1."""
    part2 = nbformat.read(WORKBOOK_DIR / "capstone_2_restart.ipynb", as_version=4)
    assert [named for _, named in headed_checks(part2)] == ["3", "4"]
    assert CheckResult(1, True, named="3").label == "exercise 3"
    assert CheckResult(2, False).label == "exercise 2"
