"""Run pytest on a folder of learner tests from a notebook cell, and print the outcome briefly:
the testing notebook's runner (``run_pytest``), beside the tests it runs.

pytest runs in a process of its own: the tests start their own event loops and servers,
which a notebook's kernel (already running a loop) could not host, and a test that hangs
or leaves a server behind cannot take the kernel with it. Starting Python and importing
pytest, FastAPI, uvicorn and Playwright takes seconds, so the kit starts one helper
(this file, run as a script) that imports them once, and each run is a fork of
it: a fresh process that imports the folder's conftest and tests itself, with none of that
start-up cost. The output is one line per test and, for a failure, its one-line reason:
what a learner needs, not 200 lines of report.

Measured by the course's authors: a new Python importing pytest and ``PRELOAD`` takes
1.3-1.6 s (a loaded machine of two CPUs), which every run of the testing notebook would pay.
``multiprocessing``'s forkserver, started from the kernel, makes each restart or shutdown of
the kernel wait for jupyter_client's SIGTERM (``lessons.kit.forkserver`` says why):
``wslab run testing`` took 20.6 and 22.0 s with it, 11.2 s with this helper, which has a
session of its own that ipykernel leaves alone.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons.kit.cleanup import Managed, end_process, track, untrack
from lessons.kit.timing import scaled

if TYPE_CHECKING:
    import pytest

# What the helper imports once, so that no run pays for it: the libraries the tests use
# (and the parts FastAPI and anyio import only once an app runs), besides pytest's plugins.
PRELOAD = ("fastapi", "pydantic.v1", "uvicorn", "websockets.asyncio.client")
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


def _session(folder: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run pytest in ``folder`` in this (forked) process; its report as JSON-ready data."""
    import pytest  # imported already: this process is a fork of the helper

    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    collector = _Collector()
    with tempfile.TemporaryFile("w+") as output, open(os.devnull) as nothing:
        os.dup2(nothing.fileno(), 0)
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        exit_code = pytest.main([*OPTIONS, "--tb=no", "--color=no", *args], plugins=[collector])
        sys.stdout.flush()
        sys.stderr.flush()
        output.seek(0)
        report = output.read()[-2000:]
    return {
        "exit_code": int(exit_code),
        "outcomes": collector.outcomes,
        "reasons": collector.reasons,
        "output": report,
    }


def _forked(request: dict[str, Any]) -> dict[str, Any]:
    """``_session(**request)`` in a child process, so that each run starts from a clean slate."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the report, and end without the parent's exit handlers
        os.close(read)
        try:
            result = _session(**request)
        except BaseException as exc:  # the parent must hear of anything
            result = {"error": f"{type(exc).__name__}: {exc}"}
        with os.fdopen(write, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as results:
        sent = results.read()
    _, status = os.waitpid(pid, 0)
    return json.loads(sent) if sent else {"error": f"pytest ended with status {status}"}


def _serve() -> None:
    """The helper: import once, then answer each request line with a report line."""
    from _pytest.config import default_plugins

    with warnings.catch_warnings():  # the helper's stderr is the kernel's: import quietly
        warnings.simplefilter("ignore")
        for module in ["pytest", *PRELOAD, *(f"_pytest.{name}" for name in default_plugins)]:
            importlib.import_module(module)
    gc.freeze()  # what the imports built: no run's garbage collections need to walk it
    for line in sys.stdin:
        print(json.dumps(_forked(json.loads(line))), flush=True)


class _Helper(Managed):
    """The helper process, started on the first run and stopped with the kit's servers."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> _Helper:
        self.process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group: a run, and the browser it starts, with it
        )
        track(self)
        return self

    def stop(self) -> None:
        untrack(self)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            end_process(self.process)
            self.process = None

    def run(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        try:
            if not select.select([stdout], [], [], timeout)[0]:
                raise TimeoutError(f"pytest did not finish within {timeout:.0f} s")
            line = stdout.readline()
        except BaseException:  # a run cut short (a timeout, an interrupt): end it, start afresh
            self.stop()
            raise
        if not line:
            raise RuntimeError("the pytest helper process ended")
        return json.loads(line)


_helper = _Helper()


def run_pytest(
    folder: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> PytestRun:
    """``python -m pytest ARGS`` in ``folder``; print one line per test unless ``quiet``."""
    request = {
        "folder": str(Path(folder).resolve()),
        "args": list(args),
        "env": {**os.environ, **(env or {})},
    }
    result = _helper.run(request, scaled(timeout))
    if "error" in result:
        raise RuntimeError(f"pytest could not run: {result['error']}")
    run = PytestRun(result["exit_code"], result["outcomes"], result["reasons"])
    if not run.outcomes and run.exit_code not in (0, 5):
        raise RuntimeError(f"pytest could not run:\n{result['output']}")
    if not quiet:
        for test, outcome in run.outcomes.items():
            reason = f"  ({run.reasons[test][:120]})" if test in run.reasons else ""
            print(f"{outcome:<7} {test.rpartition('::')[2]}{reason}")
    return run


if __name__ == "__main__":
    _serve()
