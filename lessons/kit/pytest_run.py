"""Run pytest on a folder of learner tests from a notebook cell, and print the outcome briefly.

pytest runs in a subprocess: the tests start their own event loops and servers, which a
notebook's kernel (already running a loop) could not host. The output is one line per test
and, for a failure, its one-line reason: what a learner needs, not 200 lines of report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lessons.kit.timing import scaled

# pytest -rA ends with one line per test: "FAILED path::name - reason"
_SUMMARY = re.compile(
    r"^(?P<outcome>PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (?P<test>\S+)(?: - (?P<reason>.+))?$"
)


@dataclass
class PytestRun:
    """What one pytest run reported: each test's outcome, and the reason of each failure."""

    exit_code: int
    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def outcome(self, name: str) -> str:
        """The outcome of the test whose name ends with ``name``."""
        return next(value for test, value in self.outcomes.items() if test.endswith(name))


def run_pytest(
    folder: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> PytestRun:
    """``python -m pytest ARGS`` in ``folder``; print one line per test unless ``quiet``."""
    command = [sys.executable, "-m", "pytest", "-rA", "--tb=no", "--color=no", *args]
    completed = subprocess.run(
        command,
        cwd=folder,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )
    run = PytestRun(completed.returncode)
    for line in completed.stdout.splitlines():
        if match := _SUMMARY.match(line):
            run.outcomes[match["test"]] = match["outcome"]
            if match["reason"]:
                run.reasons[match["test"]] = match["reason"]
    if not run.outcomes and completed.returncode not in (0, 5):
        raise RuntimeError(f"pytest could not run:\n{completed.stdout[-2000:]}{completed.stderr}")
    if not quiet:
        for test, outcome in run.outcomes.items():
            reason = f"  ({run.reasons[test][:120]})" if test in run.reasons else ""
            print(f"{outcome:<7} {test.split('::', 1)[1]}{reason}")
    return run
