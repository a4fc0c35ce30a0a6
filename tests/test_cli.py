"""The wslab command as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest

from lessons import discover
from lessons.cli import main, notebook_named, one_line, parser, workbook
from lessons.cli.serve import addresses
from lessons.course.book import budget_of, course_notebooks
from lessons.kit import scaled

WSLAB = [sys.executable, "-m", "lessons"]


def wslab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WSLAB, *args], capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def test_list_shows_every_lesson_and_notebook_the_commands_take_with_its_budget() -> None:
    result = wslab("list")
    assert result.returncode == 0
    header, *rows, footer = result.stdout.splitlines()
    assert header.split()[:2] == ["name", "time"] and "wslab open" in footer
    lessons = {lesson.notebook: lesson.name for lesson in discover()}
    names = {path: name for name, path in workbook().items()}
    assert [row.split()[0] for row in rows] == [
        lessons.get(path) or names[path] for path in course_notebooks()
    ]
    assert {"capstone", "capstone2", "testing"} <= {row.split()[0] for row in rows}
    for path, row in zip(course_notebooks(), rows, strict=True):
        minutes = [int(n) for n in re.findall(r"\d+", budget_of(nbformat.read(path, 4)))]
        if minutes:  # as the notebook states it: "Teaching: 23 min. Exercises: 7 min."
            assert f"{sum(minutes)} min ({minutes[0]} + {minutes[1]})" in row, row
    for name in [row.split()[0] for row in rows]:  # each name is taken by the commands
        assert notebook_named(name).is_file()


def test_help_lists_the_commands() -> None:
    result = wslab("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ["list", "serve", "run"])


COMMANDS = next(
    action.choices
    for action in parser()._actions  # every subcommand, those added later too
    if isinstance(action, argparse._SubParsersAction)
)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_description_an_example_and_its_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description.endswith(".") and "\n" not in description.strip(), description
    assert re.search(r"example:\n  wslab " + command, text), text
    options = {
        "serve": ["--host", "--port", "--log-level", "--app"],
        "bench": ["--clients", "--messages", "--size"],
        "run": ["--cell-timeout"],
        "check": ["--dir", "--cell-timeout"],
        "book": ["dir", "--cell-timeout"],
        "open": ["--dir"],
        "student": ["dir"],
    }
    for option in options.get(command, []):
        shown = re.search(rf"^  {option}\b.*?(?=^  \S|\Z)", text, re.MULTILINE | re.DOTALL)
        assert shown and "(default: " in " ".join(shown[0].split()), f"{option}: no default\n{text}"


def test_serve_announces_the_app_it_serves(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*WSLAB, "serve", "03", "--app", "board", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "serving lesson 03_manager: Task board" in first, first
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=scaled(15))


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
    served: tuple[subprocess.Popen[str], str], http: httpx.Client
) -> None:
    process, url = served
    assert '<script src="page.js"' in http.get(url).text
    assert "new WebSocket(" in http.get(url + "page.js").text
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


def test_a_failure_told_over_many_lines_is_told_in_one() -> None:
    caddy = RuntimeError(
        "caddy did not start; its log:\n"
        '{"level":"info","msg":"using config from file"}\n'
        '{"level":"error","msg":"listen tcp 127.0.0.1:8000: bind: address already in use"}\n'
        '{"level":"info","msg":"servers shutting down"}\n'
    )
    assert one_line(caddy) == (
        "caddy did not start; its log: listen tcp 127.0.0.1:8000: bind: address already in use"
    )
    app = RuntimeError("app.py did not start; its output:\nTraceback...\nKeyError: 'x'\n")
    assert one_line(app) == "app.py did not start; its output: KeyError: 'x'"
    assert one_line(OSError("cannot listen on 127.0.0.1:8001: Address already in use")) == (
        "cannot listen on 127.0.0.1:8001: Address already in use"
    )


@pytest.mark.parametrize(
    ("urls", "host", "first"),
    [
        (["http://127.0.0.1:8000/"], "127.0.0.1", "(this machine only: --host 0.0.0.0"),
        (["http://127.0.0.1:8000/", "http://10.1.2.3:8000/"], "0.0.0.0", "10.1.2.3:8000/ in"),
        (["http://127.0.0.1:8000/"], "0.0.0.0", "other machines: this one's address, port 8000"),
        (["https://127.0.0.1:8443/", "https://localhost:8443/"], "127.0.0.1", "localhost:8443"),
    ],
)
def test_serve_names_one_address_to_share_and_labels_the_others(
    urls: list[str], host: str, first: str
) -> None:
    lines = addresses(urls, host)
    assert lines[0].startswith("open ") and first in lines[0], lines
    assert len(lines) == len(urls) and all(line.startswith("also ") for line in lines[1:])
