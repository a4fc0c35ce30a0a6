"""The shape every lesson shares: discovery, self-contained apps, pitfall pairs, pages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lessons import ROOT_DIR, Lesson, UnknownLessonError, discover, find

LESSONS = discover()
IDS = [lesson.name for lesson in LESSONS]
PITFALLS_TABLE = ROOT_DIR.parent / "shared" / "PITFALLS.md"


def test_lessons_are_discovered_in_order() -> None:
    assert [lesson.number for lesson in LESSONS] == sorted(lesson.number for lesson in LESSONS)
    assert LESSONS[0].name == "01_echo"


@pytest.mark.parametrize("name", ["01", "1", "echo", "01_echo", "lessons/01_echo/", "ECHO"])
def test_find_accepts_number_slug_and_folder(name: str) -> None:
    assert find(name).name == "01_echo"


def test_find_names_the_known_lessons_when_it_fails() -> None:
    with pytest.raises(UnknownLessonError, match="01_echo"):
        find("99")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _app_files(lesson: Lesson) -> list[Path]:
    """Files a learner may copy alone: the app, pitfalls, fixes and manager steps."""
    return [
        path
        for path in sorted(lesson.path.glob("*.py"))
        if not path.name.startswith(("test_", "conftest"))
    ]


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_has_app_notebook_and_tests(lesson: Lesson) -> None:
    assert lesson.app_path.is_file() and lesson.notebook.is_file()
    assert lesson.tests, f"{lesson.name} has no test_*.py"
    assert lesson.title and lesson.title != lesson.slug.replace("_", " ")


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_apps_import_only_public_libraries(lesson: Lesson) -> None:
    for path in _app_files(lesson):
        assert "lessons" not in _imports(path), f"{path.name} imports the project's helpers"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_every_pitfall_has_its_fix(lesson: Lesson) -> None:
    pitfalls = {p.name.removeprefix("pitfall_") for p in lesson.path.glob("pitfall_*.py")}
    fixes = {p.name.removeprefix("fix_") for p in lesson.path.glob("fix_*.py")}
    assert pitfalls == fixes, f"unpaired: {sorted(pitfalls ^ fixes)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_serves_a_browser_page(lesson: Lesson) -> None:
    with TestClient(lesson.app()) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "new WebSocket(" in page.text


def _pitfall_rows() -> dict[str, list[str]]:
    """P-id -> the lesson numbers that PITFALLS.md assigns it to."""
    rows = {}
    for line in PITFALLS_TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"P\d+", cells[0]):
            rows[cells[0]] = re.findall(r"\d{2}", cells[-1])
    return rows


def _named_in(paths: list[Path], docstrings_only: bool) -> set[str]:
    found = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if docstrings_only:
            text = ast.get_docstring(ast.parse(text)) or ""
        found |= set(re.findall(r"\bP\d{2}\b", text))
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_every_catalogued_pitfall_of_the_lesson_has_a_pair(lesson: Lesson) -> None:
    """Rows of shared/PITFALLS.md, including rows added later, each need a broken/fixed pair.

    A row shared by several lessons (P09, P18, P33) may keep its pair of files in one of
    them; every lesson it names must still show it, both halves, in its own tests.
    """
    if not PITFALLS_TABLE.is_file():
        pytest.skip(f"{PITFALLS_TABLE} not found (it sits beside the repository)")
    rows = _pitfall_rows()
    wanted = {pid for pid, numbers in rows.items() if lesson.number in numbers}
    paired_here = _named_in(list(lesson.path.glob("pitfall_*.py")), docstrings_only=True)
    paired_anywhere = {
        pid
        for other in LESSONS
        for pid in _named_in(list(other.path.glob("pitfall_*.py")), docstrings_only=True)
        if other.number in rows.get(pid, [])
    }
    shown_in_tests = _named_in(lesson.tests, docstrings_only=False)
    missing = sorted(
        pid
        for pid in wanted - paired_here
        if pid not in paired_anywhere or pid not in shown_in_tests
    )
    assert not missing, f"no pitfall_*.py pair, or no test here, for {missing}"
