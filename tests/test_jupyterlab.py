"""The learner's path in a real JupyterLab, driven in Chromium: ``wslab open 01``, Run All.

One JupyterLab, started by ``wslab open`` as a learner starts it, serves both tests, which
run in this order: lesson 01's Mermaid diagrams are drawn (offline: every request that
leaves the machine is refused), then Run → Run All Cells executes every cell with no
stderr output outside cells tagged for it, no "Jupyter news" question has popped up, the
page the notebook printed still answers afterwards, saving writes the learner's copy and
leaves the checkout untouched, and Ctrl-C stops JupyterLab, its kernel and the lesson's
servers.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from lessons import ROOT_DIR, find
from lessons.course.exercises import learner_path
from lessons.kit.browser import CHROMIUM_ARGS, chromium_path
from lessons.kit.leaks import alive, descendants
from lessons.kit.notebooks import RAISES, SHOWS_LOG
from lessons.kit.timing import scaled

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc"),
]

LESSON = find("01")
OPEN_URL = re.compile(r"open (http://127\.0\.0\.1:\d+/lab/tree/\S+)")
PAGE_URL = re.compile(r"the page:\s*(http://127\.0\.0\.1:\d+/\S*)")
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => ({
    prompt: (cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    output: (cell.querySelector('.jp-OutputArea') || {}).textContent || '',
    stderr: [...cell.querySelectorAll(STDERR)].map(e => e.textContent).join(''),
}))""".replace("STDERR", repr(STDERR))
# JupyterLab shows "[ ]:" on queued cells again for a moment after a `raises-exception`
# cell, so "done" is every code cell numbered.
RUN_ALL_DONE = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
    .every(cell => /^\\[\\d+\\]:$/.test(cell.querySelector('.jp-InputArea-prompt').textContent))"""
DIAGRAMS = """() => [...document.querySelectorAll('.jp-RenderedMermaid')].map(e => ({
    error: e.classList.contains('jp-mod-warning') ? e.textContent.slice(0, 300) : '',
    width: (e.querySelector('img[src^="data:image/svg+xml"]') || {}).naturalWidth || 0,
}))"""


@dataclass
class Lab:
    """A running ``wslab open 01`` and a Chromium page on the notebook it printed."""

    process: subprocess.Popen[str]
    copy: Path
    page: Any
    output: list[str] = field(default_factory=list)


def _git_status() -> str | None:
    """``git status`` of the checkout, or None outside a git checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return status.stdout if status.returncode == 0 else None


def _chromium() -> Path:
    executable = chromium_path()
    if executable is None:
        reason = "Chromium not found: install Debian's `chromium` or set WSLAB_CHROMIUM"
        if os.environ.get("WSLAB_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    return executable


def _read(process: subprocess.Popen[str], lines: queue.Queue[str], seen: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        lines.put(line)


def _url(lines: queue.Queue[str], seen: list[str]) -> str:
    try:
        while not (found := OPEN_URL.search(lines.get(timeout=scaled(120)))):
            pass
    except queue.Empty:
        pytest.fail("`wslab open` printed no URL:\n" + "".join(seen))
    return found[1]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=scaled(10), follow_redirects=True).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    work = tmp_path_factory.mktemp("learner") / "wslab-work"
    command = [sys.executable, "-m", "lessons", "open", "01", "--dir", str(work), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    lab = Lab(process, learner_path(work, LESSON.notebook), page=None)
    reader = threading.Thread(target=_read, args=(process, lines, lab.output), daemon=True)
    reader.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(  # while JupyterLab starts
                executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
            )
            url = _url(lines, lab.output)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(scaled(60) * 1000)
            # Offline: every request that would leave this machine fails.
            context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])"), lambda route: route.abort())
            lab.page = context.new_page()
            lab.page.goto(url)
            cells = len(nbformat.read(lab.copy, as_version=4).cells)
            lab.page.wait_for_function(
                f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {cells}"
            )
            yield lab
            browser.close()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(scaled(60))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(scaled(10))
        assert process.stdout is not None
        process.stdout.close()


def test_every_mermaid_diagram_of_lesson_01_is_drawn_offline(lab: Lab) -> None:
    assert lab.copy.read_bytes() == LESSON.notebook.read_bytes(), "not a fresh copy"
    notebook = nbformat.read(lab.copy, as_version=4)
    blocks = sum(
        cell.source.count("```mermaid") for cell in notebook.cells if cell.cell_type == "markdown"
    )
    assert blocks >= 1, "lesson 01 has no ```mermaid diagram"
    lab.page.wait_for_function(
        f"() => document.querySelectorAll('.jp-RenderedMermaid').length === {blocks}"
    )
    for number, diagram in enumerate(lab.page.evaluate(DIAGRAMS), start=1):
        assert not diagram["error"], f"diagram {number} did not render: {diagram['error']}"
        assert diagram["width"] > 0, f"diagram {number} is not a drawn SVG"


def test_run_all_is_quiet_leaves_the_page_up_and_the_checkout_clean_until_ctrl_c(
    lab: Lab,
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    status, package = _git_status(), LESSON.notebook.read_bytes()
    notebook = nbformat.read(lab.copy, as_version=4)
    page = lab.page

    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    with contextlib.suppress(PlaywrightTimeout):  # the loop below says which cell did not run
        page.wait_for_function(RUN_ALL_DONE, timeout=scaled(120) * 1000)
    shown = page.evaluate(CELLS)
    assert len(shown) == len(notebook.cells)

    for index, (cell, seen) in enumerate(zip(notebook.cells, shown, strict=True)):
        if cell.cell_type != "code":
            continue
        assert re.fullmatch(r"\[\d+\]:", seen["prompt"].strip()), (
            f"cell {index} did not run; the output above it:\n"
            + next((s["output"] for s in reversed(shown[:index]) if s["output"]), "")[-1500:]
        )
        tags = set(cell.metadata.get("tags", []))
        if not tags & {SHOWS_LOG, RAISES}:
            assert not seen["stderr"], f"cell {index} wrote to stderr:\n{seen['stderr'][:1500]}"

    # Without `wslab open`'s settings a first start asks this within seconds of loading.
    assert not page.locator(".Toastify__toast", has_text="Jupyter news").count()

    printed = PAGE_URL.search("\n".join(seen["output"] for seen in shown))
    assert printed, "lesson 01 printed no `the page: http://...` line"
    assert _answers(printed[1]), f"{printed[1]} does not answer after Run All"

    with page.expect_response(
        lambda response: response.request.method == "PUT" and "/api/contents/" in response.url
    ) as saved:
        page.keyboard.press("Control+s")
    assert saved.value.ok
    stored = nbformat.read(lab.copy, as_version=4)
    assert all(c.execution_count for c in stored.cells if c.cell_type == "code")
    assert LESSON.notebook.read_bytes() == package, "the package's notebook changed"
    assert _git_status() == status, "the checkout changed"

    jupyter = re.search(r"http://127\.0\.0\.1:\d+/", "".join(lab.output))
    assert jupyter
    processes = descendants(lab.process.pid)
    lab.process.send_signal(signal.SIGINT)  # Ctrl-C in the learner's terminal
    assert lab.process.wait(scaled(60)) == 0, "".join(lab.output)
    assert not [pid for pid in processes if alive(pid)], "processes left behind"
    assert not _answers(printed[1]), "the lesson's server outlived JupyterLab"
    assert not _answers(jupyter[0] + "api"), "JupyterLab outlived Ctrl-C"
