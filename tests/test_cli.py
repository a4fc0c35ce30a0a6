"""The wslab command as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from lessons import discover
from lessons.kit import bind_socket, scaled

WSLAB = [sys.executable, "-m", "lessons"]


def wslab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WSLAB, *args], capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def test_list_shows_every_lesson_with_its_title() -> None:
    result = wslab("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [lesson.name for lesson in discover()]
    assert all(lesson.title in line for lesson, line in zip(discover(), lines, strict=True))


def test_help_lists_the_commands() -> None:
    result = wslab("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ["list", "serve", "run"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "nope"], r"unknown lesson 'nope'; the lessons are: 01_echo"),
        (["serve", "01", "--host", "no-such-host.invalid"], r"cannot resolve host"),
        (["serve", "01", "--host", "192.0.2.1"], r"cannot listen on 192\.0\.2\.1:\d+"),
        (["run", "nope"], r"unknown lesson 'nope'"),
        (["bench", "--clients", "100000"], r"clients must be between 1 and 500, not 100000"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args: list[str], message: str) -> None:
    result = wslab(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr


def test_port_in_use_is_one_line_and_exit_status_2() -> None:
    with bind_socket() as taken:
        port = taken.getsockname()[1]
        result = wslab("serve", "01", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wslab: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`wslab serve 01 --port 0` running in its own process; its page URL."""
    process = subprocess.Popen(
        [*WSLAB, "serve", "01", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        header = [process.stdout.readline() for _ in range(3)]
        match = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", "".join(header))
        assert match, header
        yield process, match[1]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(scaled(10))
        if process.stdout is not None:
            process.stdout.close()


def test_serve_prints_the_page_url_and_stops_cleanly_on_ctrl_c(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = served
    with urllib.request.urlopen(url, timeout=scaled(5)) as page:
        assert b'<script src="page.js"' in page.read()
    with urllib.request.urlopen(url + "page.js", timeout=scaled(5)) as script:
        assert b"new WebSocket(" in script.read()
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=scaled(15))
    assert process.returncode == 0
    assert "Traceback" not in output
    assert output.rstrip().endswith("wslab: stopped")


def test_run_executes_a_notebook_and_reports_one_line(tmp_path: Path) -> None:
    """The lessons' own notebooks are run by tests/test_notebooks.py; here, the report."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nbformat.write(notebook, tmp_path / "quick.ipynb")
    result = wslab("run", str(tmp_path / "quick.ipynb"), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"✓ \S*quick\.ipynb\s+[\d.]+s  ok, slowest cell 1", result.stdout)
    assert result.stdout.rstrip().endswith("1 passed, 0 failed")
