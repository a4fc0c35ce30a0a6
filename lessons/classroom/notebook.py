"""An IPython extension: each check cell a learner runs reports to the classroom.

``wslab open ... --report URL --code CODE --name NAME`` starts the kernels with
``--ext=lessons.classroom.notebook`` and the learner in ``WSLAB_REPORT``, ``WSLAB_CODE``,
``WSLAB_NAME`` and ``WSLAB_HOME``. After every cell, if its source is one of the
notebook's check cells, the result (passed, or failed with the check's hint) is sent and
one line says so under the cell. The notebook is the one JupyterLab names in
``JPY_SESSION_NAME``, else any notebook in the kernel's folder (the check cells' sources
tell them apart).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lessons.classroom.checks import check_cells, lesson_key
from lessons.classroom.client import ClassroomError, Learner


def _checks(folder: Path, home: Path) -> dict[str, tuple[str, int, str]]:
    """The source of each check cell -> (lesson, exercise, hint)."""
    session = os.environ.get("JPY_SESSION_NAME", "")  # absolute, or relative to the copy
    named = [path for path in [home / session] if session.endswith(".ipynb") and path.is_file()]
    found = {}
    for notebook in named or sorted(folder.glob("*.ipynb")):
        for number, (source, hint) in enumerate(check_cells(notebook), start=1):
            found[source.strip()] = (lesson_key(notebook), number, hint)
    return found


def load_ipython_extension(shell: Any) -> None:
    learner = Learner.from_environment()
    if learner is None:
        return
    checks = _checks(Path.cwd(), learner.home)

    def after_cell(outcome: Any) -> None:
        found = checks.get((outcome.info.raw_cell or "").strip())
        if found is None:
            return
        lesson, exercise, hint = found
        passed = bool(outcome.success)
        try:
            learner.report(lesson, [(exercise, passed, hint)])
        except ClassroomError as exc:
            print(f"classroom: not reported: {exc}")
            return
        print(f"classroom: reported exercise {exercise} {'passed' if passed else 'failed'}")

    shell.events.register("post_run_cell", after_cell)
