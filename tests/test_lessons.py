"""The shape every lesson shares: discovery, self-contained apps, pitfall pairs, pages."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest
from starlette.testclient import TestClient

from lessons import (
    PAIR_PREFIXES,
    PITFALLS,
    ROOT_DIR,
    TESTS,
    Lesson,
    UnknownLessonError,
    discover,
    find,
    load_module,
)

LESSONS = discover()
IDS = [lesson.name for lesson in LESSONS]
PITFALLS_TABLE = ROOT_DIR.parent / "shared" / "PITFALLS.md"


def test_lessons_are_discovered_in_order() -> None:
    assert [lesson.number for lesson in LESSONS] == sorted(lesson.number for lesson in LESSONS)
    assert LESSONS[0].name == "01_echo"


@pytest.mark.parametrize("name", ["01", "1", "echo", "01_echo", "lessons/01_echo/", "ECHO"])
def test_find_accepts_number_slug_and_folder(name: str) -> None:
    assert find(name).name == "01_echo"


def test_loading_a_file_leaves_sys_path_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # its folder is on the path already
    before = list(sys.path)
    assert load_module(tmp_path / "app.py").x == 1
    assert sys.path == before


def test_a_pitfall_loads_the_modules_of_its_lesson(tmp_path: Path) -> None:
    """``pitfalls/pitfall_x.py`` may import the lesson's top-level modules, by path as under
    ``uvicorn pitfalls.pitfall_x:app`` in the lesson folder; each load gets fresh ones."""
    (tmp_path / "guards.py").write_text("seen = []\n")
    (tmp_path / PITFALLS).mkdir()
    pitfall = tmp_path / PITFALLS / "pitfall_x.py"
    pitfall.write_text("from guards import seen\n\nseen.append(1)\n")
    before = list(sys.path)
    assert load_module(pitfall).seen == [1]
    assert load_module(pitfall).seen == [1]
    assert sys.path == before and "guards" not in sys.modules


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
    """Files a learner may copy alone: the app, pitfalls, fixes and manager steps (not the
    tests, nor ``experiments.py``: the notebook's clients, which run on the kit)."""
    top = [path for path in sorted(lesson.path.glob("*.py")) if path.stem != "experiments"]
    return top + sorted(lesson.pitfalls.glob("*.py"))


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_the_folder_shows_what_a_learner_opens_at_its_top(lesson: Lesson) -> None:
    """The pitfall/fix pairs are in ``pitfalls/``, the tests in ``tests/``, nothing else is."""
    misplaced = ("test_", "conftest", *PAIR_PREFIXES)
    top = [p.name for p in lesson.path.glob("*.py") if p.name.startswith(misplaced)]
    assert not top, f"at the top of {lesson.name}: {top} (pairs: {PITFALLS}/, tests: {TESTS}/)"
    strays = [
        f"{folder}/{p.name}"
        for folder, prefixes in [(PITFALLS, PAIR_PREFIXES), (TESTS, ("test_", "conftest"))]
        for p in (lesson.path / folder).glob("*.py")
        if not p.name.startswith(prefixes)
    ]
    assert not strays, f"in the wrong subfolder of {lesson.name}: {strays}"


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
    pitfalls = {p.name.removeprefix("pitfall_") for p in lesson.pitfalls.glob("pitfall_*.py")}
    fixes = {p.name.removeprefix("fix_") for p in lesson.pitfalls.glob("fix_*.py")}
    assert pitfalls == fixes, f"unpaired: {sorted(pitfalls ^ fixes)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_serves_a_browser_page(lesson: Lesson) -> None:
    """The page, and the scripts it loads from the app, open a WebSocket."""
    with TestClient(lesson.app()) as client:
        page = client.get("/")
        scripts = [
            client.get(f"/{src.lstrip('/')}")
            for src in re.findall(r'<script[^>]+src="(?!https?:)([^"]+)"', page.text)
        ]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert all(script.status_code == 200 for script in scripts)
    assert "new WebSocket(" in page.text + "".join(script.text for script in scripts)


PITFALL_INDEX = ROOT_DIR / "docs" / "pitfalls.md"
INDEX_ROW = re.compile(
    r"^\|(?P<symptom>[^|]+)\|\s*(?P<pid>P\d{2})\b[^|]*\|\s*\[[^]]*\]\((?P<link>[^)#]+)"
)
# Pitfalls catalogued for the course whose lessons are still to be written.
PENDING_PITFALLS: dict[str, str] = {}


def _index_rows() -> list[tuple[str, Lesson]]:
    """(P-id, lesson) for every row of docs/pitfalls.md, in order."""
    rows = []
    for line in PITFALL_INDEX.read_text(encoding="utf-8").splitlines():
        match = INDEX_ROW.match(line)
        if match:
            rows.append((match["pid"], find((PITFALL_INDEX.parent / match["link"]).parent.name)))
    return rows


def _named_in(paths: list[Path], docstrings_only: bool) -> set[str]:
    found = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if docstrings_only:
            text = ast.get_docstring(ast.parse(text)) or ""
        found |= set(re.findall(r"\bP\d{2}\b", text))
    return found


def _markdown_of(lesson: Lesson) -> str:
    notebook = nbformat.read(lesson.notebook, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


@pytest.mark.parametrize(
    ("pid", "lesson"), _index_rows(), ids=[f"{pid}-{lesson.name}" for pid, lesson in _index_rows()]
)
def test_every_indexed_pitfall_has_its_pair_its_test_and_its_section(
    pid: str, lesson: Lesson
) -> None:
    """A pitfall listed in docs/pitfalls.md is taught where the index says.

    A row shared by several lessons (P09, P18, P33) may keep its pair of files in one of
    them; every lesson it is listed under must still show it in its notebook and its tests.
    """
    pairs = [
        path
        for other in LESSONS
        for path in other.pitfalls.glob("pitfall_*.py")
        if pid in _named_in([path], docstrings_only=True)
    ]
    assert pairs, f"no lesson has a pitfall_*.py pair for {pid}"
    tests = "\n".join(path.read_text(encoding="utf-8") for path in lesson.tests)
    named = [pid, *(path.stem.removeprefix("pitfall_") for path in pairs)]
    assert any(name in tests for name in named), f"no test of {lesson.name} names {named}"
    assert re.search(rf"\b{pid}\b", _markdown_of(lesson)), (
        f"{lesson.name}'s notebook never says {pid}"
    )


def _catalogue_ids() -> list[str]:
    if not PITFALLS_TABLE.is_file():
        return []
    return re.findall(r"^\|\s*(P\d{2})\s*\|", PITFALLS_TABLE.read_text(encoding="utf-8"), re.M)


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param(pid, marks=pytest.mark.xfail(strict=True, reason=PENDING_PITFALLS[pid]))
        if pid in PENDING_PITFALLS
        else pid
        for pid in _catalogue_ids()
    ]
    or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {PITFALLS_TABLE} beside the repo"))],
)
def test_every_catalogued_pitfall_is_in_the_index(pid: str) -> None:
    """Where the course's source catalogue sits beside the repository (development, CI),
    every pitfall in it, rows added later included, is in the learners' own index."""
    assert pid in {row_pid for row_pid, _ in _index_rows()}
