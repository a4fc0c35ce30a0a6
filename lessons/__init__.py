"""The wslab lessons: discovery of the lesson folders and loading of their apps by path.

Lesson folders are named ``NN_slug`` (``01_echo``). Those names are not Python
identifiers, so nothing here imports them as packages: each file is loaded by path
under a module name that cannot clash with another lesson's file of the same name.

A lesson folder's top level holds what a learner opens (the notebook, the app and its
modules, the page, the experiments); its ``pitfall_<name>.py``/``fix_<name>.py`` pairs are
in ``pitfalls/``, its ``test_*.py`` and ``conftest.py`` in ``tests/``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

LESSONS_DIR = Path(__file__).resolve().parent
ROOT_DIR = LESSONS_DIR.parent
WORKBOOK_DIR = ROOT_DIR / "notebooks"
_FOLDER = re.compile(r"^(?P<number>\d{2})_(?P<slug>[a-z][a-z0-9_]*)$")
PITFALLS = "pitfalls"  # a lesson's subfolder of pitfall_*.py and fix_*.py pairs
TESTS = "tests"  # a lesson's subfolder of test_*.py and conftest.py
PAIR_PREFIXES = ("pitfall_", "fix_")

# jsonschema, which nbformat and Jupyter's server import, imports rfc3987_syntax when it is
# installed, only to check the "iri" string format, and that module builds its parsers as it
# is imported: about 2 s of CPU in every `wslab` command, test worker and JupyterLab. No
# notebook or Jupyter schema uses that format, so it is left out: jsonschema then skips that
# one check, as it does when the package is not installed.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


class UnknownLessonError(LookupError):
    """No lesson matches the name a user gave."""


@dataclass(frozen=True)
class Lesson:
    """One lesson folder: ``lessons/NN_slug`` with ``app.py``, ``lesson.ipynb``, ``pitfalls/``
    and ``tests/``."""

    number: str
    slug: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def app_path(self) -> Path:
        return self.path / "app.py"

    @property
    def notebook(self) -> Path:
        return self.path / "lesson.ipynb"

    @property
    def pitfalls(self) -> Path:
        """The folder of the lesson's ``pitfall_*.py``/``fix_*.py`` pairs."""
        return self.path / PITFALLS

    @property
    def tests(self) -> list[Path]:
        return sorted((self.path / TESTS).glob("test_*.py"))

    def file(self, stem: str) -> Path:
        """``<stem>.py`` of this lesson: ``pitfall_x`` and ``fix_x`` in ``pitfalls/``, any
        other at the top of the folder (``app``, ``board``, ``experiments``)."""
        folder = self.pitfalls if stem.startswith(PAIR_PREFIXES) else self.path
        return folder / f"{stem}.py"

    @property
    def title(self) -> str:
        """The first line of ``app.py``'s docstring."""
        return self.describe()

    def describe(self, stem: str = "app") -> str:
        """The first line of ``<stem>.py``'s docstring (``board``: lesson 03's task board)."""
        source = self.file(stem).read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(source))
        return doc.strip().splitlines()[0].rstrip(".") if doc else self.slug.replace("_", " ")

    def module(self, stem: str = "app") -> ModuleType:
        """Load ``<stem>.py`` from this lesson's folder (``app``, ``pitfall_x``, ``fix_x``)."""
        return load_module(self.file(stem))

    def app(self, stem: str = "app") -> Any:
        """The ASGI app object ``app`` defined in ``<stem>.py``."""
        return self.module(stem).app


def discover() -> list[Lesson]:
    """Every lesson folder, in course order."""
    found = []
    for path in sorted(LESSONS_DIR.iterdir()):
        match = _FOLDER.match(path.name)
        if match and (path / "app.py").is_file():
            found.append(Lesson(match["number"], match["slug"], path))
    return found


def find(name: str) -> Lesson:
    """The lesson called ``01``, ``1``, ``echo`` or ``01_echo``."""
    wanted = name.strip().lower().rstrip("/").rsplit("/", 1)[-1]
    for lesson in discover():
        if wanted in {lesson.name, lesson.slug, lesson.number} or (
            wanted.isdigit() and int(wanted) == int(lesson.number)
        ):
            return lesson
    known = ", ".join(lesson.name for lesson in discover())
    raise UnknownLessonError(f"unknown lesson {name!r}; the lessons are: {known}")


def load_module(path: str | Path) -> ModuleType:
    """Import a Python file by path, under a module name unique to that path.

    Loading the same file again returns a fresh module (a fresh app, fresh state),
    which is what a test or a notebook cell that restarts a server wants. The file may
    import the modules beside it (``from accounts import ...``), as under uvicorn run in
    its folder; a file in a lesson's ``pitfalls/`` may also import the lesson's own modules
    (``from client_guards import ...``), as under ``uvicorn pitfalls.pitfall_x:app`` run in
    the lesson folder. Those are fresh on each load too.
    """
    path = Path(path).resolve()
    relative = path.relative_to(ROOT_DIR) if path.is_relative_to(ROOT_DIR) else path
    name = "wslab_" + re.sub(r"\W", "_", str(relative.with_suffix("")))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    before = set(sys.modules)
    folders = [str(path.parent)]
    if path.parent.name == PITFALLS:
        folders.append(str(path.parent.parent))  # the lesson's own modules
    sys.path.extend(folders)  # after the libraries: a lesson file never shadows one
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        for folder in reversed(folders):  # ours: the last ones
            del sys.path[len(sys.path) - 1 - sys.path[::-1].index(folder)]
        for sibling in set(sys.modules) - before:  # imported again by the next load
            file = getattr(sys.modules[sibling], "__file__", None)
            if "." not in sibling and file and str(Path(file).parent) in folders:
                del sys.modules[sibling]
    return module


def load_with(path: str | Path, **env: str) -> ModuleType:
    """``load_module(path)`` with ``env`` in the environment the file reads at import, as
    ``HEARTBEAT=0.2 uvicorn app:app`` would run it; the environment is restored afterwards."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return load_module(path)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
