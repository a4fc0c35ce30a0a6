"""A learner never has to guess what comes next: every link resolves, every lesson says Next."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from lessons import ROOT_DIR, WORKBOOK_DIR, discover
from lessons.course.exercises import learner_copies

LINK = re.compile(r"\]\((?!https?://|#)([^)\s]+)\)")
DOCUMENTS = [
    ROOT_DIR / "README.md",
    *sorted((ROOT_DIR / "docs").glob("*.md")),
    *sorted((ROOT_DIR / "instructors").glob("*.md")),
    *[lesson.notebook for lesson in discover()],
    *sorted(WORKBOOK_DIR.glob("*.ipynb")),
]


def _markdown(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT_DIR)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = _broken_links(path)
    assert not broken, f"links to nothing: {broken}"


def _broken_links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(_markdown(path))
        if not (path.parent / target.split("#")[0]).exists()
    ]


def test_every_link_resolves_in_the_learner_copies(tmp_path: Path) -> None:
    """What `wslab student` writes is a course of its own: its links stay inside it."""
    learner_copies(discover(), WORKBOOK_DIR, tmp_path)
    documents = sorted(tmp_path.rglob("*.ipynb")) + sorted(tmp_path.rglob("*.md"))
    broken = {str(path.relative_to(tmp_path)): _broken_links(path) for path in documents}
    assert not {name: links for name, links in broken.items() if links}


def test_the_readme_links_every_notebook() -> None:
    readme = _markdown(ROOT_DIR / "README.md")
    for notebook in [lesson.notebook for lesson in discover()] + list(WORKBOOK_DIR.glob("*.ipynb")):
        assert str(notebook.relative_to(ROOT_DIR)) in readme, f"README does not link {notebook}"


@pytest.mark.parametrize("lesson", discover(), ids=lambda lesson: lesson.name)
def test_each_lesson_links_the_next_step_and_has_instructor_notes(lesson) -> None:
    lessons = discover()
    index = lessons.index(lesson)
    following = (
        lessons[index + 1].notebook
        if index + 1 < len(lessons)
        else WORKBOOK_DIR / "capstone_1_board.ipynb"
    )
    expected = Path(os.path.relpath(following, lesson.path)).as_posix()
    assert f"]({expected})" in _markdown(lesson.notebook), f"no link to {expected}"
    assert (ROOT_DIR / "instructors" / f"{lesson.name}.md").is_file()
