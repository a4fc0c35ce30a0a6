"""The course conventions (docs/authoring.md), each checked for every lesson and the capstone's
two parts.

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

from lessons import PITFALLS, ROOT_DIR, TESTS, WORKBOOK_DIR, discover, load_module
from lessons.course import budget
from lessons.course.book import course_notebooks
from lessons.course.exercises import CHECK, SOLUTION, wrong_answers

CAPSTONE_DIR = WORKBOOK_DIR / "capstone"
CAPSTONES = [WORKBOOK_DIR / "capstone_1_board.ipynb", WORKBOOK_DIR / "capstone_2_restart.ipynb"]

ALL = {"failure_first", "pairs", "pages", "pictures", "references", "budget", "exercises"}
# Conventions a unit still breaks, and the issue that converts it. Remove an entry when the
# unit passes (the strict mark makes the suite say so).
PENDING: dict[str, tuple[str, set[str]]] = {}


@dataclass(frozen=True)
class Unit:
    """A lesson folder with its notebook, or a part of the capstone (its parts share a folder
    and one file of instructor notes, which gives each part's time in order)."""

    name: str
    folder: Path
    notebook: Path
    notes: str = ""

    @property
    def notes_file(self) -> Path:
        return ROOT_DIR / "instructors" / f"{self.notes or self.name}.md"


UNITS = [Unit(lesson.name, lesson.path, lesson.notebook) for lesson in discover()] + [
    Unit("capstone", CAPSTONE_DIR, CAPSTONES[0]),
    Unit("capstone2", CAPSTONE_DIR, CAPSTONES[1], notes="capstone"),
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
    pitfalls = (unit.folder / PITFALLS).glob("pitfall_*.py")
    return sorted(p.stem.removeprefix("pitfall_") for p in pitfalls)


def _learner_files(unit: Unit, suffixes: set[str]) -> list[Path]:
    """The unit's files a learner reads: its top level and its pitfalls (not its tests)."""
    files = [*unit.folder.iterdir(), *(unit.folder / PITFALLS).glob("*")]
    return [
        path
        for path in sorted(files)
        if path.suffix in suffixes and not path.name.startswith(("test_", "conftest"))
    ]


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


# 1. Failure first ---------------------------------------------------------------------------

SHOWING = re.compile(r"\bshow(_diff)?\(")


def _mentions(cell: nbformat.NotebookNode, stem: str) -> bool:
    """Whether the cell names the lesson file ``stem``: "pitfall_x", "pitfalls/pitfall_x.py"."""
    return bool(re.search(rf"[\"']({PITFALLS}/)?{re.escape(stem)}(\.py)?[\"']", cell.source))


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
    broken_doc, broken = _docstring_and_body(folder / PITFALLS / f"pitfall_{name}.py")
    fixed_doc, fixed = _docstring_and_body(folder / PITFALLS / f"fix_{name}.py")
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
        for path in _learner_files(unit, {".py"})
        if MARKUP.search(path.read_text(encoding="utf-8"))
    ]
    assert not inline, f"HTML or JavaScript inside Python strings: {inline}"
    with TestClient(load_module(unit.folder / "app.py").app) as client:
        served = client.get("/")
    assert served.status_code == 200
    assert served.text == page.read_text(encoding="utf-8"), "/ does not serve index.html"


SERVER_INTERNALS = ("uvicorn.protocols", "uvicorn.server")
REACHES_TRANSPORT = re.compile(r"""\.transport\b|["']transport["']""")


def imported_modules(source: str) -> set[str]:
    """The modules a file imports, by their full names (``from a import b``: ``a`` and
    ``a.b``, whichever ``b`` is)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


@pytest.mark.parametrize("unit", _params("stock", UNITS))
def test_the_app_runs_on_stock_asgi(unit: Unit) -> None:
    """The app a learner copies, with the modules beside it that it imports, subclasses no
    uvicorn class and never reaches the socket under ASGI: code that must (P36's reset)
    stays inside its pitfall/fix pair; experiments.py is the notebook's client, not the app."""
    for path in sorted(unit.folder.glob("*.py")):
        if path.stem == "experiments":
            continue
        source = path.read_text(encoding="utf-8")
        internals = sorted(n for n in imported_modules(source) if n.startswith(SERVER_INTERNALS))
        assert not internals, f"{path.name} imports uvicorn's internals: {internals}"
        assert not REACHES_TRANSPORT.search(source), f"{path.name} reaches the transport"


# Imports go one way: lessons.cli -> lessons.course -> lessons.kit -> lessons (the loader).
LAYERS = ("lessons.cli", "lessons.course", "lessons.kit")


@pytest.mark.parametrize("layer", LAYERS[1:])
def test_imports_go_one_way(layer: str) -> None:
    above = LAYERS[: LAYERS.index(layer)]
    folder = ROOT_DIR.joinpath(*layer.split("."))
    wrong = {
        f"{path.name}: {name}"
        for path in folder.glob("*.py")
        for name in imported_modules(path.read_text(encoding="utf-8"))
        if name.startswith(above)
    }
    assert not wrong, f"{layer} imports from a layer above it: {sorted(wrong)}"


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
        for path in _learner_files(unit, {".py", ".html", ".js", ".md"})
    }
    files[unit.notebook.name] = "\n".join(c.source for c in _notebook(unit).cells)
    notes = unit.notes_file
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
        if path not in CAPSTONES
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

CORE_MINUTES = 45
ESTIMATES = budget.course_estimates(course_notebooks())


@pytest.mark.parametrize("unit", _params("budget", UNITS))
def test_the_stated_budget_is_the_estimate_of_the_core_path(unit: Unit) -> None:
    """The figures of lessons/course/budget.py's formula, within 10% and 2 minutes."""
    stated = budget.stated_budget(_notebook(unit))
    assert stated, 'the first cell states no budget ("Teaching: 25 min. Exercises: 10 min.")'
    teaching, exercises = stated
    estimate = ESTIMATES[unit.notebook]
    assert estimate.total <= CORE_MINUTES * 1.1, (
        f"the core path is about {estimate.total:.0f} min: move sections under "
        '"## Optional: ..." or split the lesson'
    )
    assert teaching + exercises <= CORE_MINUTES, f"the core path is {teaching + exercises} min"
    for part, said, estimated in [
        ("teaching", teaching, estimate.teaching),
        ("exercises", exercises, estimate.exercises),
        ("core path", teaching + exercises, estimate.total),
    ]:
        assert abs(said - estimated) <= max(2, 0.1 * estimated), (
            f"states {said} min of {part}, the formula estimates {estimated:.0f}"
        )
    notebook = _notebook(unit)
    checks = [i for i, c in enumerate(notebook.cells) if CHECK in _tags(c)]
    optional = len(budget.core_cells(notebook))
    assert optional == len(notebook.cells) or not checks or optional > checks[-1], (
        "the optional section must come after the exercises, at the end"
    )


def test_the_budget_formula_counts_learning_and_stops_at_optional(tmp_path: Path) -> None:
    """Prose, a prediction, a code cell and an exercise's statement each cost what
    lessons/course/budget.py says; a solution, a check and the optional part add nothing."""
    new = nbformat.v4
    statement = "## Exercise 1: ten words " + "x " * 5
    cells = [
        new.new_markdown_cell("**Predict:** one two"),  # 3 words and a prediction
        new.new_code_cell("print(1)\nprint(2)"),
        new.new_markdown_cell(statement),
        new.new_code_cell("answer = 1", metadata={"tags": ["solution"]}),
        new.new_code_cell("assert answer", metadata={"tags": ["check"]}),
        new.new_markdown_cell("## Optional: more\n\n" + "word " * 500),
        new.new_code_cell("print(3)"),
    ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(new.new_notebook(cells=cells), path)
    found = budget.estimate(path)
    assert found.teaching == pytest.approx(
        3 / budget.WORDS_PER_MINUTE
        + budget.PREDICTION_MINUTES
        + budget.CELL_MINUTES
        + 2 / budget.CODE_LINES_PER_MINUTE
    )
    words = len(statement.split())
    assert found.exercises == pytest.approx(
        words / budget.WORDS_PER_MINUTE + words / budget.STATEMENT_WORDS_PER_MINUTE
    )


MAP_ROW = re.compile(r"^\|\s*\[[^\]]+\]\(([^)]+\.ipynb)\)\s*\|\s*(\d+) min\s*\|", re.MULTILINE)
NOTES_TIME = re.compile(
    r"\*\*Time:\*\* (\d+) minutes\b.*?(\d+) of teaching\b"
    r".*?(\d+)\s+for\s+the\s+(?:\w+\s+)?exercises",
    re.S,
)


def test_the_start_page_and_the_instructor_notes_give_the_notebooks_budgets() -> None:
    """Every place that states a notebook's time says what the notebook says, and the start
    page lists the notebooks in course order."""
    start = WORKBOOK_DIR / "00_start_here.ipynb"
    course = "\n".join(c.source for c in nbformat.read(start, 4).cells)
    rows = [((WORKBOOK_DIR / link).resolve(), int(m)) for link, m in MAP_ROW.findall(course)]
    assert [path for path, _ in rows] == [p.resolve() for p in course_notebooks()[1:]], (
        "the start page's map lists the notebooks out of course order"
    )
    for path, minutes in rows:
        stated = budget.stated_budget(nbformat.read(path, 4))
        assert stated and sum(stated) == minutes, f"{path.name}: the map says {minutes} min"
    hours, minutes = divmod(sum(m for _, m in rows), 60)
    total = f"{hours} h {minutes:02d} min in all"
    assert total in " ".join(course.split()), f"the start page does not say the total: {total}"
    for unit in UNITS:
        notes = unit.notes_file
        if not notes.is_file():
            continue
        times = list(NOTES_TIME.finditer(notes.read_text(encoding="utf-8")))
        part = [other for other in UNITS if other.notes_file == notes].index(unit)
        stated = budget.stated_budget(_notebook(unit))
        assert len(times) > part and stated, f"{notes.name} states no time in the shared form"
        said = tuple(int(n) for n in times[part].groups())
        assert said == (sum(stated), *stated), f"{notes.name} says {said}, the notebook {stated}"


# 7. Exercises worth doing -------------------------------------------------------------------

WRONG_ANSWERS = 3  # per exercise, at least


@pytest.mark.parametrize("unit", _params("exercises", UNITS))
def test_every_exercise_has_a_hint_and_plausible_wrong_answers(unit: Unit) -> None:
    """The wrong answers are run by test_notebooks: each must fail its check, with a message
    that holds its ``expect``."""
    cells = _notebook(unit).cells
    checks = [c for c in cells if CHECK in _tags(c)]
    solutions = [c for c in cells if SOLUTION in _tags(c)]
    assert len(checks) >= 2, "at least two exercises"
    for number, check in enumerate(checks, start=1):
        assert check.metadata.get("wslab", {}).get("hint"), f"check {number} has no custom hint"
    for number, solution in enumerate(solutions, start=1):
        wrong = wrong_answers(solution)
        assert len(wrong) >= WRONG_ANSWERS, (
            f"solution {number} has {len(wrong)} plausible wrong answers (metadata wslab.wrong),"
            f" not {WRONG_ANSWERS}"
        )
        unpointed = [k for k, answer in enumerate(wrong, start=1) if not answer.expect]
        assert not unpointed, (
            f"solution {number}: wrong answers {unpointed} say no part of the message their"
            ' check must fail with ({"source": ..., "expect": ...})'
        )


# 8. Tests: one way per tier ------------------------------------------------------------------

# Test files that build SubprocessServer themselves: the fixture, and the tests of the class
# and of the machinery that starts its processes.
BUILDS_PROCESSES = {
    "conftest.py",
    "tests/test_kit.py",
    "tests/test_forkserver.py",
    "tests/test_kernel_exit.py",
    "tests/test_runner.py",
}
TEST_FILES = sorted(
    [ROOT_DIR / "conftest.py", *(ROOT_DIR / "tests").glob("*.py")]
    + [path for lesson in discover() for path in (lesson.path / TESTS).glob("*.py")]
)
TEST_FILES.remove(Path(__file__).resolve())  # this one names what it looks for


def test_tests_start_servers_with_the_fixtures_and_fetch_with_httpx() -> None:
    """docs/authoring.md, "Tests: one way per tier"."""
    found = []
    for path in TEST_FILES:
        name = path.relative_to(ROOT_DIR).as_posix()
        text = path.read_text(encoding="utf-8")
        if "SubprocessServer(" in text and name not in BUILDS_PROCESSES:
            found.append(f"{name}: SubprocessServer( (use the serve_file fixture)")
        if re.search(r"\burllib\b", text):
            found.append(f"{name}: urllib (use httpx, the http fixture)")
    assert not found, "\n".join(found)
