"""The course conventions (docs/authoring.md), each checked for every lesson and the capstone.

A lesson not yet converted carries a strict expected failure for each convention it still
breaks, naming the issue that converts it: the suite stays green, the gap stays visible,
and a lesson that starts passing must drop its mark (strict: an unexpected pass fails).
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from starlette.testclient import TestClient

from lessons import ROOT_DIR, WORKBOOK_DIR, discover, load_module
from lessons.kit.exercises import CHECK, SOLUTION

CAPSTONE_DIR = WORKBOOK_DIR / "capstone"
CAPSTONE = WORKBOOK_DIR / "capstone_task_board.ipynb"

ALL = {"failure_first", "pairs", "pages", "pictures", "references", "budget", "exercises"}
# Conventions a unit still breaks, and the issue that converts it. Remove an entry when the
# unit passes (the strict mark makes the suite say so).
PENDING: dict[str, tuple[str, set[str]]] = {}


@dataclass(frozen=True)
class Unit:
    """A lesson folder with its notebook, or the capstone."""

    name: str
    folder: Path
    notebook: Path


UNITS = [Unit(lesson.name, lesson.path, lesson.notebook) for lesson in discover()] + [
    Unit("capstone", CAPSTONE_DIR, CAPSTONE),
    Unit("testing", WORKBOOK_DIR / "testing", WORKBOOK_DIR / "testing_your_app.ipynb"),
]
LESSON_UNITS = [unit for unit in UNITS if unit.folder.parent != WORKBOOK_DIR]


def _params(convention: str, units: list[Unit]) -> list[object]:
    params = []
    for unit in units:
        reason, failing = PENDING.get(unit.name, ("", set()))
        marks = (
            [pytest.mark.xfail(strict=True, reason=f"{unit.name}: {reason}")]
            if convention in failing
            else []
        )
        params.append(pytest.param(unit, marks=marks, id=unit.name))
    return params


def _notebook(unit: Unit) -> nbformat.NotebookNode:
    return nbformat.read(unit.notebook, as_version=4)


def _pairs(unit: Unit) -> list[str]:
    return sorted(p.stem.removeprefix("pitfall_") for p in unit.folder.glob("pitfall_*.py"))


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


# 1. Failure first ---------------------------------------------------------------------------

SHOWING = re.compile(r"\bshow(_diff)?\(")


def _mentions(cell: nbformat.NotebookNode, stem: str) -> bool:
    return bool(re.search(rf"[\"']{re.escape(stem)}(\.py)?[\"']", cell.source))


def _section_problems(cells: list[nbformat.NotebookNode], name: str) -> list[str]:
    """What is missing or out of order in the section that teaches pitfall ``name``."""
    broken, fixed = f"pitfall_{name}", f"fix_{name}"
    code = [(i, c) for i, c in enumerate(cells) if c.cell_type == "code"]
    diffs = [i for i, c in code if "show_diff(" in c.source and _mentions(c, broken)]
    if not diffs:
        return [f"{name}: no show_diff({broken!r}, {fixed!r}) cell"]
    diff = diffs[0]
    runs = [i for i, c in code if _mentions(c, broken) and not SHOWING.search(c.source)]
    if not runs or runs[0] > diff:
        return [f"{name}: the broken app does not run before its diff (cell {diff})"]
    run = runs[0]
    problems = []
    fixes = [
        i for i, c in code if i > diff and _mentions(c, fixed) and not SHOWING.search(c.source)
    ]
    if not fixes:
        problems.append(f"{name}: the fixed app does not run after its diff")
    headings = [
        (i, line)
        for i, c in enumerate(cells[:run])
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    if not headings or not headings[-1][1].rstrip().endswith("?"):
        problems.append(f"{name}: the section heading is not the learner's question")
    start = headings[-1][0] if headings else 0
    if not any(
        "predict" in c.source.lower() for c in cells[start:run] if c.cell_type == "markdown"
    ):
        problems.append(f"{name}: no prediction prompt before the broken run")
    if not any(c.cell_type == "markdown" for c in cells[run + 1 : diff]):
        problems.append(f"{name}: no explanation between the broken run and the diff")
    return problems


@pytest.mark.parametrize("unit", _params("failure_first", LESSON_UNITS))
def test_each_pitfall_is_shown_failing_before_its_diff_and_fix(unit: Unit) -> None:
    """Question heading, prediction, broken run, explanation, diff, fixed run: in order."""
    cells = _notebook(unit).cells
    problems = [problem for name in _pairs(unit) for problem in _section_problems(cells, name)]
    assert not problems, "\n".join(problems)


# 2. Pairs that diff to the point ----------------------------------------------------------

MAX_CHANGED = 12
# pair stem -> why it may change more than MAX_CHANGED lines
LONG_DIFFS: dict[str, str] = {
    "03_manager/stalled_close": "the point is a protocol class: a deadline, an abort that "
    "asyncio only allows on a connection still open, and why it is uvicorn's (17 lines)",
}


def _docstring_and_body(path: Path) -> tuple[str, list[str]]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    doc = ast.get_docstring(tree) or ""
    lines = text.splitlines()
    first = tree.body[0] if tree.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        lines = lines[first.end_lineno :]
    return doc, lines


def _pair_problems(folder: Path, name: str) -> list[str]:
    broken_doc, broken = _docstring_and_body(folder / f"pitfall_{name}.py")
    fixed_doc, fixed = _docstring_and_body(folder / f"fix_{name}.py")
    problems = []
    for stem, doc in ((f"pitfall_{name}", broken_doc), (f"fix_{name}", fixed_doc)):
        if len(doc.strip().splitlines()) != 1:
            problems.append(f"{stem}.py: the docstring is not one line (prose: the notebook)")
    if re.sub(r"\bbroken\b", "fixed", broken_doc) != fixed_doc:
        problems.append(
            f"{name}: docstrings differ by more than broken/fixed: {broken_doc!r} / {fixed_doc!r}"
        )
    changed = sum(
        line[:1] in "+-" and not line.startswith(("+++", "---"))
        for line in difflib.unified_diff(broken, fixed, lineterm="", n=0)
    )
    if changed > MAX_CHANGED and f"{folder.name}/{name}" not in LONG_DIFFS:
        problems.append(f"{name}: the diff changes {changed} lines (at most {MAX_CHANGED})")
    return problems


@pytest.mark.parametrize("unit", _params("pairs", LESSON_UNITS))
def test_pitfall_and_fix_differ_only_in_the_point(unit: Unit) -> None:
    problems = [problem for name in _pairs(unit) for problem in _pair_problems(unit.folder, name)]
    assert not problems, "\n".join(problems)


# 3. Pages are files -------------------------------------------------------------------------

MARKUP = re.compile(r"<(html|script|body)\b", re.IGNORECASE)


@pytest.mark.parametrize("unit", _params("pages", UNITS))
def test_the_page_is_a_file_beside_the_app(unit: Unit) -> None:
    page = unit.folder / "index.html"
    assert page.is_file(), f"no {page.relative_to(ROOT_DIR)}"
    inline = [
        path.name
        for path in sorted(unit.folder.glob("*.py"))
        if not path.name.startswith("test_") and MARKUP.search(path.read_text(encoding="utf-8"))
    ]
    assert not inline, f"HTML or JavaScript inside Python strings: {inline}"
    with TestClient(load_module(unit.folder / "app.py").app) as client:
        served = client.get("/")
    assert served.status_code == 200
    assert served.text == page.read_text(encoding="utf-8"), "/ does not serve index.html"


SERVER_INTERNALS = ("uvicorn.protocols", "uvicorn.server")
REACHES_TRANSPORT = re.compile(r"""\.transport\b|["']transport["']""")


@pytest.mark.parametrize("unit", _params("stock", UNITS))
def test_the_app_runs_on_stock_asgi(unit: Unit) -> None:
    """The app a learner copies subclasses no uvicorn class and never reaches the socket
    under ASGI: code that must (P36's protocol) stays inside its pitfall/fix pair."""
    source = (unit.folder / "app.py").read_text(encoding="utf-8")
    imported = {
        name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        + [alias.name for alias in node.names]
    }
    internals = sorted(n for n in imported if n.startswith(SERVER_INTERNALS))
    assert not internals, f"app.py imports uvicorn's internals: {internals}"
    assert not REACHES_TRANSPORT.search(source), "app.py reaches the transport"


# 4. Pictures --------------------------------------------------------------------------------

MERMAID = re.compile(r"^```mermaid\n.+?^```", re.MULTILINE | re.DOTALL)
MIN_DIAGRAMS = {"01_echo": 2}


def mermaid_blocks(notebook: nbformat.NotebookNode) -> list[str]:
    """The Mermaid diagrams in the markdown cells of ``notebook``."""
    return [
        block
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for block in MERMAID.findall(cell.source)
    ]


@pytest.mark.parametrize("unit", _params("pictures", UNITS))
def test_the_notebook_draws_its_diagrams_in_mermaid(unit: Unit) -> None:
    blocks = MERMAID.finditer(
        "\n".join(c.source for c in _notebook(unit).cells if c.cell_type == "markdown")
    )
    assert len(list(blocks)) >= MIN_DIAGRAMS.get(unit.name, 1)


# 5. Learner and instructor files speak only of what ships -----------------------------------

FORBIDDEN = re.compile(
    r"\bseeds?\b(?! of)|(?-i:PITFALLS\.md)|\bthis machine\b|\b(2|two) cores\b|\bmeasured here\b",
    re.IGNORECASE,
)


def _learner_text(unit: Unit) -> dict[str, str]:
    files = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(unit.folder.iterdir())
        if path.suffix in {".py", ".html", ".js", ".md"}
        and not path.name.startswith(("test_", "conftest"))
    }
    files[unit.notebook.name] = "\n".join(c.source for c in _notebook(unit).cells)
    notes = ROOT_DIR / "instructors" / f"{unit.name}.md"
    if notes.is_file():
        files[f"instructors/{notes.name}"] = notes.read_text(encoding="utf-8")
    return files


def _forbidden(files: dict[str, str]) -> list[str]:
    return [
        f"{name}: {match.group(0)!r}"
        for name, text in files.items()
        for match in FORBIDDEN.finditer(text)
    ]


@pytest.mark.parametrize("unit", _params("references", UNITS))
def test_learner_files_cite_only_what_ships(unit: Unit) -> None:
    found = _forbidden(_learner_text(unit))
    assert not found, "cites what a learner does not have: " + "; ".join(found)


DOCS = ROOT_DIR / "docs"


def test_shared_docs_cite_only_what_ships() -> None:
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}
    files["README.md"] = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    files |= {
        f"workbook/{path.name}": "\n".join(c.source for c in nbformat.read(path, 4).cells)
        for path in sorted(WORKBOOK_DIR.glob("*.ipynb"))
        if path != CAPSTONE
    }
    found = _forbidden(files)
    assert not found, "cites what a learner does not have: " + "; ".join(found)


GLOSSARY_TERMS = [
    "ASGI",
    "handshake",
    "frame",
    "close code",
    "backpressure",
    "half-open",
    "fan-out",
    "pub/sub",
    "stream",
    "heartbeat",
    "Origin",
    "event loop",
    "lifespan",
    "reverse proxy",
]


def test_the_glossary_defines_every_term_the_course_uses() -> None:
    text = (DOCS / "glossary.md").read_text(encoding="utf-8")
    headings = {m.group(1).lower() for m in re.finditer(r"^#+\s*(.+?)\s*$", text, re.MULTILINE)}
    headings |= {m.group(1).lower() for m in re.finditer(r"^\*\*(.+?)\*\*", text, re.MULTILINE)}
    missing = [term for term in GLOSSARY_TERMS if not any(term.lower() in h for h in headings)]
    assert not missing, f"not defined in docs/glossary.md: {missing}"


def test_troubleshooting_covers_what_learners_hit() -> None:
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8").lower()
    for topic in ["port", "redis", "kernel", "chromium", "windows"]:
        assert topic in text, f"docs/troubleshooting.md says nothing about {topic}"


# 6. Quiet, quick cells: the budget ----------------------------------------------------------

BUDGET = re.compile(r"Teaching:\s*(\d+)\s*min\.\s*Exercises:\s*(\d+)\s*min\.")
CORE_MINUTES = 45
OPTIONAL = re.compile(r"^##\s+Optional\b", re.MULTILINE)


def _listing_lines(cell: nbformat.NotebookNode, folder: Path) -> int:
    """How many lines of code the cell prints with show() and show_diff()."""
    from lessons.kit.show import _select

    total = 0
    try:
        tree = ast.parse(cell.source.replace("await ", ""))
    except SyntaxError:
        return 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if node.func.id == "show" and args and (folder / str(args[0])).is_file():
            lines = (folder / str(args[0])).read_text(encoding="utf-8").splitlines()
            try:
                first, stop = _select(lines, *[*args[1:3], None, None][:2])
            except ValueError:
                continue
            total += stop - first
        elif node.func.id == "show_diff" and len(args) == 2:
            a, b = (folder / str(args[0])), (folder / str(args[1]))
            if a.is_file() and b.is_file():
                total += len(
                    list(
                        difflib.unified_diff(
                            a.read_text(encoding="utf-8").splitlines(),
                            b.read_text(encoding="utf-8").splitlines(),
                            lineterm="",
                        )
                    )
                )
    return total


def estimated_teaching_minutes(notebook: nbformat.NotebookNode, folder: Path) -> float:
    """A learner's time for the core path: reading prose (130 words a minute), reading,
    predicting and running each code cell (0.75 minute, plus its lines at 15 a minute),
    and reading the listings it prints (20 lines a minute). Exercise cells count in the
    exercise time, and cells after an "## Optional" heading are not on the core path."""
    minutes = 0.0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            if OPTIONAL.search(cell.source):
                break
            minutes += len(cell.source.split()) / 130
        elif cell.cell_type == "code" and not {SOLUTION, CHECK} & set(_tags(cell)):
            minutes += 0.75 + len(cell.source.splitlines()) / 15
            minutes += _listing_lines(cell, folder) / 20
    return minutes


@pytest.mark.parametrize("unit", _params("budget", UNITS))
def test_the_stated_budget_fits_the_core_path(unit: Unit) -> None:
    notebook = _notebook(unit)
    first = next(c for c in notebook.cells if c.cell_type == "markdown")
    stated = BUDGET.search(first.source)
    assert stated, 'the first cell states no budget ("Teaching: 25 min. Exercises: 10 min.")'
    teaching, exercises = int(stated[1]), int(stated[2])
    assert teaching + exercises <= CORE_MINUTES, f"the core path is {teaching + exercises} min"
    estimate = estimated_teaching_minutes(notebook, unit.folder)
    assert estimate <= teaching, f"about {estimate:.0f} min of teaching for a {teaching} min budget"
    checks = [i for i, c in enumerate(notebook.cells) if CHECK in _tags(c)]
    optional = [
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "markdown" and OPTIONAL.search(c.source)
    ]
    assert not optional or not checks or optional[0] > checks[-1], (
        "the optional section must come after the exercises, at the end"
    )


# 7. Exercises worth doing -------------------------------------------------------------------


@pytest.mark.parametrize("unit", _params("exercises", UNITS))
def test_every_exercise_has_a_hint_and_a_plausible_wrong_answer(unit: Unit) -> None:
    """The wrong answers are run by test_exercises: each must fail its check."""
    cells = _notebook(unit).cells
    checks = [c for c in cells if CHECK in _tags(c)]
    solutions = [c for c in cells if SOLUTION in _tags(c)]
    assert len(checks) >= 2, "at least two exercises"
    for number, check in enumerate(checks, start=1):
        assert check.metadata.get("wslab", {}).get("hint"), f"check {number} has no custom hint"
    for number, solution in enumerate(solutions, start=1):
        wrong = solution.metadata.get("wslab", {}).get("wrong")
        assert wrong, f"solution {number} has no plausible wrong answer (metadata wslab.wrong)"
