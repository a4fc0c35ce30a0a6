"""Fixtures shared by the cross-cutting tests: each notebook executed once per session."""

from __future__ import annotations

import fcntl
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lessons import ROOT_DIR
from lessons.course.exercises import Probe, probe_exercises
from lessons.kit.notebooks import NotebookClient, NotebookResult, run_notebook


@dataclass
class Execution:
    """A notebook run headless with its solutions, then its exercises probed with wrong answers."""

    result: NotebookResult
    probes: list[Probe]


@pytest.fixture(scope="session")
def executed(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Callable[[Path], Execution]:
    """``executed(path)`` runs the notebook the first time any test asks for it, then
    remembers: the notebook tests and the book share one run of each notebook, across the
    xdist workers too (the first worker to ask runs it holding a file lock; the others wait
    for the lock, then read the run).

    This is pytest-xdist's own recipe for a session fixture that runs once ("Making
    session-scoped fixtures execute only once" in its docs), with ``fcntl`` in place of the
    filelock package it names. Without it, the book's tests would run every notebook again:
    72 s of ``wslab run`` (all ten notebooks, measured on 2026-12-07) on top of a suite of
    about 195 s against a budget of 240 s."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # this session's directory, above each worker's own
    shared /= "executed"
    shared.mkdir(exist_ok=True)
    runs: dict[Path, Execution] = {}

    def run(path: Path) -> Execution:
        if path not in runs:
            name = re.sub(r"\W", "_", str(path.relative_to(ROOT_DIR)))
            saved = shared / f"{name}.pickle"
            with open(shared / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not saved.exists():
                    saved.write_bytes(pickle.dumps(_execute(path)))
                runs[path] = pickle.loads(saved.read_bytes())
        return runs[path]

    return run


def _execute(path: Path) -> Execution:
    probes: list[Probe] = []

    async def probe(client: NotebookClient) -> None:
        probes.extend(await probe_exercises(client))

    return Execution(run_notebook(path, cell_timeout=180, after=probe), probes)
