"""The course as a static site: executed notebooks rendered to HTML with their outputs, plots
and diagrams, an index page in course order with the time budgets, the glossary and the
pitfall index, linked the way the notebooks link.

The pages work offline and from ``file://``: no CDN, and Mermaid is the library's own
bundle copied beside the pages (``lessons/book/static``).
"""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from lessons import LESSONS_DIR, PITFALLS, ROOT_DIR, WORKBOOK_DIR, discover
from lessons.course.budget import BUDGET, folders_of
from lessons.course.exercises import CHECK, SOLUTION, without_solutions

BOOK_FILES = LESSONS_DIR / "book"
STATIC = "_static"
DOCS_DIR = ROOT_DIR / "docs"
_LOCAL_HREF = re.compile(r'href="(?![a-z]+:|#|/)([^"#]+?)\.(ipynb|md)(#[^"]*)?"')


def course_notebooks() -> list[Path]:
    """Every notebook in course order: start here, the lessons, the rest of the workbook, and
    the capstone's parts last, in order (it uses the testing notebook's fixtures)."""
    workbook = sorted(
        WORKBOOK_DIR.glob("*.ipynb"), key=lambda p: (p.name.startswith("capstone"), p.name)
    )
    first = [path for path in workbook if path.name.startswith("00_")]
    rest = [path for path in workbook if path not in first]
    return first + [lesson.notebook for lesson in discover()] + rest


@dataclass
class Page:
    """One rendered notebook: where it came from, where it went, what the index says of it."""

    source: Path
    html: Path
    title: str
    budget: str


def title_of(notebook: nbformat.NotebookNode) -> str:
    """The notebook's first heading."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                return match[1].strip()
    return "untitled"


def budget_of(notebook: nbformat.NotebookNode) -> str:
    """The time budget the notebook states at the top ("Teaching: 20 min. Exercises: 10 min.")."""
    first = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
    match = BUDGET.search(first)
    return match[0] if match else ""


def for_students(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed notebook without its solutions, and without what the checks printed."""
    learner = without_solutions(notebook)
    for cell in learner.cells:
        if CHECK in cell.metadata.get("tags", []) or SOLUTION in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
    return learner


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _link_pages(body: str) -> str:
    """Links between notebooks and docs point at their rendered pages."""
    return _LOCAL_HREF.sub(lambda m: f'href="{m[1]}.html{m[3] or ""}"', body)


def _exporter() -> HTMLExporter:
    return HTMLExporter(
        template_name="wslab", extra_template_basedirs=[str(BOOK_FILES / "templates")]
    )


def render_notebook(notebook: nbformat.NotebookNode, source: Path, dest: Path) -> Page:
    """Write ``notebook`` (executed) as HTML at the place of ``source`` under ``dest``."""
    page = dest / source.resolve().relative_to(ROOT_DIR).with_suffix(".html")
    page.parent.mkdir(parents=True, exist_ok=True)
    resources = {
        "wslab_static": _relative(dest / STATIC, page),
        "wslab_root": _relative(dest, page) or ".",
        "metadata": {"name": title_of(notebook)},
    }
    body, _ = _exporter().from_notebook_node(copy.deepcopy(notebook), resources=resources)
    page.write_text(_link_pages(body), encoding="utf-8")
    return Page(source, page, title_of(notebook), budget_of(notebook))


def _html_page(title: str, body: str, root: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui;margin:2rem auto;max-width:52rem;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
code{{background:#f4f4f4;padding:0 .2rem}}</style></head>
<body><nav><a href="{root}/index.html">wslab: contents</a> ·
<a href="{root}/docs/glossary.html">glossary</a> ·
<a href="{root}/docs/pitfalls.html">pitfall index</a></nav>
{body}
</body></html>
"""


def render_markdown(source: Path, dest: Path) -> Path:
    """Write a markdown document of the course (``docs/*.md``) as an HTML page."""
    page = dest / source.resolve().relative_to(ROOT_DIR).with_suffix(".html")
    page.parent.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8")
    title = next((line.lstrip("# ") for line in text.splitlines() if line.startswith("#")), "")
    body = _link_pages(markdown2html_mistune(text))
    page.write_text(_html_page(title, body, _relative(dest, page) or "."), encoding="utf-8")
    return page


def write_index(pages: list[Page], dest: Path, *, student: bool) -> Path:
    """The contents page: every notebook in course order with its budget, then the docs."""
    rows = "\n".join(
        f'<tr><td><a href="{_relative(page.html, dest / "index.html")}">'
        f"{html.escape(page.title)}</a></td><td>{html.escape(page.budget)}</td></tr>"
        for page in pages
    )
    edition = "the learner's edition, without solutions" if student else "with the solutions"
    body = f"""<h1>wslab: real-time WebSockets in Python</h1>
<p>Every lesson executed, with its outputs, plots and diagrams ({edition}).
To run the cells yourself, open the notebooks in JupyterLab.</p>
<table><tr><th>notebook</th><th>time budget</th></tr>
{rows}
</table>
<h2>Reference</h2>
<ul><li><a href="docs/glossary.html">Glossary</a>: every term the course uses</li>
<li><a href="docs/pitfalls.html">Pitfall index</a>: find your symptom</li>
<li><a href="docs/troubleshooting.html">Troubleshooting</a></li></ul>
"""
    index = dest / "index.html"
    index.write_text(_html_page("wslab", body, "."), encoding="utf-8")
    return index


def _served_page(page: Path, target: Path, notebook: Path, dest: Path) -> str:
    """What the book shows instead of a lesson's page: the page talks to the lesson's server
    (``/page.js``, a WebSocket), so a copy opened from a file would only break."""
    lesson = next((lesson for lesson in discover() if lesson.path == page.parent), None)
    how = (
        f"<code>wslab serve {lesson.name}</code> serves it, at the address it prints"
        if lesson
        else "the notebook's cells serve it, at the address they print"
    )
    back = _relative(dest / notebook.resolve().relative_to(ROOT_DIR).with_suffix(".html"), target)
    body = f"""<h1>{html.escape(page.name)}</h1>
<p>This page talks to its lesson's server, so the book does not copy it: {how}. Its source
is <code>{html.escape(page.resolve().relative_to(ROOT_DIR).as_posix())}</code>.</p>
<p>Back to <a href="{back}">the notebook</a>.</p>"""
    return _html_page(page.name, body, _relative(dest, target) or ".")


def _copy_sources(notebook: Path, dest: Path) -> None:
    """The files a notebook shows (apps, scripts, a lesson's ``pitfalls/``) beside its page.
    A page (``.html``) is replaced by a note on how to serve it, with a link back to the
    notebook."""
    for folder in folders_of(notebook):
        own = folder == notebook.parent
        files = [*folder.glob("*"), *folder.glob(f"{PITFALLS}/*")] if own else folder.rglob("*")
        for path in files:
            if (
                path.is_file()
                and path.suffix in {".py", ".html", ".js", ".css"}
                and not path.name.startswith(("test_", "conftest"))
            ):
                target = dest / path.resolve().relative_to(ROOT_DIR)
                target.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix == ".html":
                    target.write_text(_served_page(path, target, notebook, dest), encoding="utf-8")
                else:
                    shutil.copyfile(path, target)


def build(
    executed: dict[Path, nbformat.NotebookNode], dest: Path, *, student: bool = False
) -> list[Page]:
    """Render the executed notebooks (in the order given), the docs and the index into
    ``dest``; ``student=True`` leaves the solutions out."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(BOOK_FILES / "static", dest / STATIC, dirs_exist_ok=True)
    pages = [
        render_notebook(for_students(notebook) if student else notebook, source, dest)
        for source, notebook in executed.items()
    ]
    for document in sorted(DOCS_DIR.glob("*.md")):
        render_markdown(document, dest)
    for source in executed:
        _copy_sources(source, dest)
    write_index(pages, dest, student=student)
    return pages
