"""Run pytest on a folder of learner tests from a notebook cell, and print the outcome briefly.

pytest runs in a process of its own: the tests start their own event loops and servers,
which a notebook's kernel (already running a loop) could not host, and a test that hangs
or leaves a server behind cannot take the kernel with it. Starting Python and importing
pytest, FastAPI, uvicorn and Playwright takes seconds, so each run is forked from a
process that has imported them once (``lessons.kit.forkserver``): a fresh process that
imports the folder's conftest and tests itself, with none of that start-up cost. The
output is one line per test and, for a failure, its one-line reason: what a learner
needs, not 200 lines of report.

Measured: a new Python importing pytest and ``PRELOAD`` takes 1.3-1.6 s (2 cores, load 7-9),
which every run of the testing notebook would pay.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from lessons.kit import forkserver
from lessons.kit.timing import scaled

if TYPE_CHECKING:
    import pytest

# What the forkserver imports once, so that no run pays for it: pytest and the libraries
# the tests use (and the parts FastAPI and anyio import only once an app runs).
PRELOAD = ("pytest", "fastapi", "pydantic.v1", "uvicorn", "websockets.asyncio.client")
PRELOAD += ("starlette.testclient", "anyio._backends._asyncio", "playwright.sync_api")
# Only the plugin the tests need (their ``anyio`` marker); the other installed plugins
# (xdist, timeout) would cost every run their imports and do nothing here.
OPTIONS = ("-p", "no:cacheprovider", "--disable-plugin-autoload", "-p", "anyio.pytest_plugin")


@dataclass
class PytestRun:
    """What one pytest run reported: each test's outcome, and the reason of each failure."""

    exit_code: int
    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    output: str = field(default="", repr=False)  # the end of pytest's own report

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """A failure's one line, as pytest's short summary gives it."""
    if xfail := getattr(report, "wasxfail", ""):
        return str(xfail)
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).partition("\n")[0]
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, "Skipped: why")
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    last = str(report.longrepr or "").strip().rpartition("\n")[2]  # "E   SyntaxError: ..."
    return re.sub(r"^E\s+", "", last)


class _Collector:
    """A pytest plugin that records each test's outcome as the short summary names it."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.reasons: dict[str, str] = {}

    def _record(self, report: pytest.TestReport | pytest.CollectReport, outcome: str) -> None:
        self.outcomes[report.nodeid] = outcome
        if outcome != "PASSED":
            self.reasons[report.nodeid] = _reason(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a test file that does not import: nothing in it can run
            self._record(report, "ERROR")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.outcomes.get(report.nodeid) in ("FAILED", "ERROR"):
            return  # the first failure is the one to read (set-up, call, then teardown)
        xfail = hasattr(report, "wasxfail")
        if report.failed:
            self._record(report, "FAILED" if report.when == "call" else "ERROR")
        elif report.skipped:
            self._record(report, "XFAIL" if xfail else "SKIPPED")
        elif report.passed and report.when == "call":
            self._record(report, "XPASS" if xfail else "PASSED")


def _session(folder: str, args: list[str], env: dict[str, str], results: Connection) -> None:
    """Run pytest in ``folder`` in this (forked) process; send its report to ``results``."""
    try:
        import pytest  # imported already by the forkserver

        os.chdir(folder)
        os.environ.clear()
        os.environ.update(env)
        collector = _Collector()
        with tempfile.TemporaryFile("w+") as output:
            for fd in (1, 2):
                os.dup2(output.fileno(), fd)
            code = pytest.main([*OPTIONS, "--tb=no", "--color=no", *args], plugins=[collector])
            sys.stdout.flush()
            sys.stderr.flush()
            output.seek(0)
            report = output.read()[-2000:]
        results.send(PytestRun(int(code), collector.outcomes, collector.reasons, report))
    except BaseException as exc:  # the starting process must hear of anything
        results.send(f"{type(exc).__name__}: {exc}")
    os._exit(0)  # without waiting for threads a test left behind


def run_pytest(
    folder: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> PytestRun:
    """``python -m pytest ARGS`` in ``folder``; print one line per test unless ``quiet``."""
    received, sent = multiprocessing.Pipe(duplex=False)
    request = (str(Path(folder).resolve()), list(args), {**os.environ, **(env or {})}, sent)
    with received, sent:
        process = forkserver.start(_session, *request, preload=PRELOAD)
        sent.close()
        try:
            if not received.poll(scaled(timeout)):
                raise TimeoutError(f"pytest did not finish within {timeout:.0f} s")
            run = received.recv()
        except EOFError:
            raise RuntimeError("pytest could not run: its process ended") from None
        finally:  # the run, and whatever it started in its session (a browser)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.join()
    if isinstance(run, str):
        raise RuntimeError(f"pytest could not run: {run}")
    if not run.outcomes and run.exit_code not in (0, 5):
        raise RuntimeError(f"pytest could not run:\n{run.output}")
    if not quiet:
        for test, outcome in run.outcomes.items():
            reason = f"  ({run.reasons[test][:120]})" if test in run.reasons else ""
            print(f"{outcome:<7} {test.rpartition('::')[2]}{reason}")
    return run
