"""`wslab book`: the book renders the notebooks the notebook tests ran (one run of each,
shared through the ``executed`` fixture), with their outputs, links that resolve, a student
edition without the solutions, and diagrams drawn offline."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from lessons import ROOT_DIR
from lessons.course.book import build, course_notebooks
from lessons.course.exercises import SOLUTION

REFERENCE = re.compile(r'(?:href|src)="(?![a-z]+:|#|//)([^"#?]+)')


def _render(executed: Callable[[Path], Any], dest: Path, *, student: bool) -> dict[Path, Any]:
    paths = course_notebooks()
    for path in reversed(paths):  # from the last: the notebook tests take them from the first
        executed(path)
    runs = {path: executed(path).result for path in paths}
    failed = [str(path.relative_to(ROOT_DIR)) for path, result in runs.items() if not result.ok]
    if failed:
        pytest.fail(f"not rendered, these notebooks fail (see their own tests): {failed}")
    notebooks = {path: result.notebook for path, result in runs.items()}
    build(notebooks, dest, student=student)
    return notebooks


@pytest.fixture(scope="module")
def book(
    executed: Callable[[Path], Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[Path, Any]]:
    dest = tmp_path_factory.mktemp("book")
    return dest, _render(executed, dest, student=False)


def _page(dest: Path, source: Path) -> Path:
    return dest / source.relative_to(ROOT_DIR).with_suffix(".html")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_notebook_has_its_page_with_its_outputs_and_plots(
    book: tuple[Path, dict[Path, Any]],
) -> None:
    dest, notebooks = book
    index = (dest / "index.html").read_text(encoding="utf-8")
    for source, notebook in notebooks.items():
        page = _page(dest, source)
        assert page.is_file(), f"no page for {source.name}"
        assert page.relative_to(dest).as_posix() in index, f"the index does not link {page}"
        text = page.read_text(encoding="utf-8")
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                if output.output_type == "stream" and output.text.strip():
                    line = output.text.strip().splitlines()[0]
                    assert html.escape(line, quote=False) in text, f"{page.name}: lost {line!r}"
                if "image/png" in output.get("data", {}):
                    png = output.data["image/png"].replace("\n", "")
                    assert png[:200] in text.replace("\n", ""), f"{page.name}: a plot is missing"
                    assert base64.b64decode(png[:64])[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_link_and_file_in_the_book_resolves(book: tuple[Path, dict[Path, Any]]) -> None:
    dest, _ = book
    assert not broken_links(dest), f"links to nothing: {broken_links(dest)}"
    for name in ["glossary", "pitfalls", "troubleshooting"]:
        assert (dest / "docs" / f"{name}.html").is_file()


def broken_links(dest: Path, left_out: frozenset[Path] = frozenset()) -> dict[str, list[str]]:
    """Each page of the book (the lessons' own pages included) with what it links to or
    loads that is not in the book, but for the notebook pages ``left_out`` on purpose."""
    return {
        str(page.relative_to(dest)): missing
        for page in sorted(dest.rglob("*.html"))
        if (
            missing := [
                target
                for target in REFERENCE.findall(page.read_text(encoding="utf-8"))
                if target.startswith("/")
                or (
                    not (page.parent / html.unescape(target)).exists()
                    and (page.parent / html.unescape(target)).resolve() not in left_out
                )
            ]
        )
    }


def test_the_book_has_no_broken_link_even_before_the_notebooks_run(tmp_path: Path) -> None:
    """Two notebooks as stored (not executed, so quick; the slow test above takes them all):
    every link, script and page that a page of the book names is in the book; the lessons'
    pages, which need their server, are a note that says how to serve them and links back
    to the notebook."""
    notebooks = {
        path: nbformat.read(path, as_version=4)
        for path in course_notebooks()
        if {path.parent.name, path.stem} & {"01_echo", "testing_your_app"}
    }
    build(notebooks, tmp_path)
    left_out = frozenset(
        _page(tmp_path.resolve(), path) for path in course_notebooks() if path not in notebooks
    )
    broken = broken_links(tmp_path, left_out)
    assert not broken, f"links to nothing: {broken}"
    note = (tmp_path / "lessons" / "01_echo" / "index.html").read_text(encoding="utf-8")
    assert "wslab serve 01_echo" in note and 'href="lesson.html"' in note
    assert "page.js" not in note


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_student_book_leaves_the_solutions_out(
    executed: Callable[[Path], Any], tmp_path: Path
) -> None:
    notebooks = _render(executed, tmp_path, student=True)
    for source, notebook in notebooks.items():
        text = _page(tmp_path, source).read_text(encoding="utf-8")
        for cell in notebook.cells:
            if SOLUTION not in cell.metadata.get("tags", []):
                continue
            elsewhere = "\n".join(
                str(other.get("source", "")) + str(other.get("outputs", ""))
                for other in notebook.cells
                if other is not cell
            ) + str(cell.metadata.get("wslab", {}).get("stub", ""))  # the stub may quote it
            own = [line.strip() for line in cell.source.splitlines() if line.strip()]
            own = [line for line in own if len(line) > 20 and line not in elsewhere]
            for line in own:
                assert html.escape(line, quote=False) not in text, f"{source.name}: {line}"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_the_diagrams_render_in_chromium(
    book: tuple[Path, dict[Path, Any]], new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    dest, notebooks = book
    page = new_page()
    page.goto((dest / "index.html").as_uri())
    expect(page.locator("table a").first).to_be_visible()
    lessons_with_diagrams = [
        source
        for source, notebook in notebooks.items()
        if any("```mermaid" in c.source for c in notebook.cells if c.cell_type == "markdown")
    ]
    assert lessons_with_diagrams, "no notebook draws a diagram"
    for source in lessons_with_diagrams[:2]:
        page.goto(_page(dest, source).as_uri())
        expect(page.locator("body")).to_have_attribute("data-mermaid", "done")
        assert page.locator("body").get_attribute("data-mermaid-error") is None
        diagrams = page.locator(".jp-Mermaid > pre.mermaid")
        assert diagrams.count() >= 1
        for i in range(diagrams.count()):
            expect(diagrams.nth(i).locator("svg")).to_have_count(1)
