"""Fixtures shared by the cross-cutting tests: each notebook executed once per session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lessons.kit.exercises import Probe, probe_exercises
from lessons.kit.notebooks import NotebookClient, NotebookResult, run_notebook


@dataclass
class Execution:
    """A notebook run headless with its solutions, then its exercises probed with wrong answers."""

    result: NotebookResult
    probes: list[Probe]


@pytest.fixture(scope="session")
def executed() -> Callable[[Path], Execution]:
    """``executed(path)`` runs the notebook the first time it is asked for, then remembers:
    the notebook tests and the book share one run of each notebook."""
    runs: dict[Path, Execution] = {}

    def run(path: Path) -> Execution:
        if path not in runs:
            probes: list[Probe] = []

            async def probe(client: NotebookClient) -> None:
                probes.extend(await probe_exercises(client))

            runs[path] = Execution(run_notebook(path, cell_timeout=180, after=probe), probes)
        return runs[path]

    return run
