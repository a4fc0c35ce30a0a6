"""A learner works in a copy: ``wslab open`` and ``wslab student`` never touch the package.

``wslab open`` copies the course (notebooks as taught, without outputs) and reuses the copy
without overwriting the learner's work; ``wslab student`` copies it without outputs,
execution counts, solutions or JupyterLab checkpoints. In both copies every link resolves.
``wslab open`` starts JupyterLab on the copy with this interpreter's kernel and the news
pop-up off, and a signal stops it with its kernels.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nbformat
import pytest

import lessons.course.exercises as exercises
from lessons import TESTS, WORKBOOK_DIR, Lesson, discover
from lessons.cli import main
from lessons.course.exercises import learner_copies, learner_path
from lessons.kit.cleanup import STOP_SIGNALS
from lessons.kit.leaks import alive, descendants
from lessons.kit.timing import eventually, scaled

OPEN_URL = re.compile(r"open (http://127\.0\.0\.1:\d+)/lab/tree/\S+\?token=(\w+)")


def _documents(root: Path) -> set[Path]:
    found = [*root.rglob("*.ipynb"), *root.rglob("*.md")]
    return {path.relative_to(root) for path in found if ".wslab" not in path.parts}


def test_the_working_copy_holds_every_document_of_a_student_copy_in_the_same_place(
    tmp_path: Path,
) -> None:
    """So its links resolve too: test_links.py checks them in the student copy."""
    assert main(["open", "--dir", str(tmp_path / "work"), "--no-lab"]) == 0
    assert main(["student", str(tmp_path / "student")]) == 0
    assert _documents(tmp_path / "student") <= _documents(tmp_path / "work")


def test_open_copies_the_course_as_taught_without_outputs_or_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["open", "01", "--dir", str(tmp_path), "--no-lab"]) == 0
    assert "lessons/01_echo/lesson.ipynb" in capsys.readouterr().out
    for lesson in discover():
        copied = nbformat.read(learner_path(tmp_path, lesson.notebook), as_version=4)
        original = nbformat.read(lesson.notebook, as_version=4)
        assert [c.source for c in copied.cells] == [c.source for c in original.cells]
        assert not any(c.get("outputs") or c.get("execution_count") for c in copied.cells)
        assert (learner_path(tmp_path, lesson.app_path)).is_file()
        assert not (learner_path(tmp_path, lesson.path) / TESTS).exists()
        assert list(learner_path(tmp_path, lesson.pitfalls).glob("pitfall_*.py"))
    assert (learner_path(tmp_path, WORKBOOK_DIR) / "capstone" / "app.py").is_file()
    assert (tmp_path / "docs" / "glossary.md").is_file()


def test_open_reuses_the_copy_and_never_overwrites_the_learners_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lesson = discover()[0]
    assert main(["open", lesson.number, "--dir", str(tmp_path), "--no-lab"]) == 0
    notebook, app = learner_path(tmp_path, lesson.notebook), learner_path(tmp_path, lesson.app_path)
    worked = nbformat.read(notebook, as_version=4)
    worked.cells[0].source = "my notes"
    worked.cells[1].outputs = [nbformat.v4.new_output("stream", text="my run\n")]
    nbformat.write(worked, notebook)
    app.write_text("# my app\n")
    learner_path(tmp_path, lesson.file("pitfall_binary_frame")).unlink()
    capsys.readouterr()

    assert main(["open", lesson.number, "--dir", str(tmp_path), "--no-lab"]) == 0
    assert "wrote" not in capsys.readouterr().out
    assert nbformat.read(notebook, as_version=4) == worked
    assert app.read_text() == "# my app\n"
    assert learner_path(tmp_path, lesson.file("pitfall_binary_frame")).is_file()


def test_open_names_the_lessons_when_one_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["open", "nope", "--dir", str(tmp_path), "--no-lab"]) == 2
    error = capsys.readouterr().err
    assert "unknown lesson or notebook 'nope'; the lessons are: 01_echo" in error
    assert "the notebooks: start, capstone, capstone2, testing" in error
    assert not list(tmp_path.iterdir())


def test_student_copies_drop_outputs_counts_solutions_and_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lesson notebook saved by JupyterLab, with outputs and a checkpoint folder."""
    root = tmp_path / "course"
    folder = root / "lessons" / "99_saved"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / TESTS).mkdir()
    (root / "docs").mkdir()
    (folder / "app.py").write_text('"""An app."""\n')
    (folder / TESTS / "test_saved.py").write_text("")
    (folder / ".ipynb_checkpoints" / "lesson-checkpoint.ipynb").write_text("{}")
    solution = nbformat.v4.new_code_cell("answer = 42", execution_count=3)
    solution.metadata.update(tags=["solution"], execution={"shell.execute_reply": "2025"})
    solution.outputs = [nbformat.v4.new_output("stream", text="Exercise 1 passes\n")]
    check = nbformat.v4.new_code_cell("assert answer == 42", execution_count=4)
    check.metadata["tags"] = ["check"]
    nbformat.write(nbformat.v4.new_notebook(cells=[solution, check]), folder / "lesson.ipynb")
    monkeypatch.setattr(exercises, "ROOT_DIR", root)
    monkeypatch.setattr(exercises, "DOCS_DIR", root / "docs")

    [copy] = learner_copies([Lesson("99", "saved", folder)], None, tmp_path / "copy")
    assert copy == tmp_path / "copy" / "lessons" / "99_saved" / "lesson.ipynb"
    stub, kept = nbformat.read(copy, as_version=4).cells
    assert stub.source == exercises.STUB and kept.source == check.source
    for cell in (stub, kept):
        assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata
    assert sorted(path.name for path in copy.parent.iterdir()) == ["app.py", "lesson.ipynb"]


def _api(base: str, token: str, path: str, method: str = "GET") -> dict:
    headers = {"Authorization": f"token {token}"}
    response = httpx.request(method, f"{base}{path}", headers=headers, timeout=scaled(30))
    return response.raise_for_status().json()


# Ctrl-C: see test_jupyterlab.py. SIGKILL: `wslab open` cannot clean up, the kernel must.
STOPS = [sig for sig in STOP_SIGNALS if sig != signal.SIGINT] + (
    [signal.SIGKILL] if sys.platform.startswith("linux") else []
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_open_serves_jupyterlab_with_our_kernel_and_no_news_and_stops_on_a_signal(
    tmp_path: Path,
) -> None:
    """SIGTERM and SIGHUP (the terminal closed) stop JupyterLab cleanly, and its kernels
    with it; even when ``wslab open`` is killed, JupyterLab gets SIGTERM and stops. One
    `wslab open` per signal, side by side (each spends its time waiting on JupyterLab)."""
    with ThreadPoolExecutor(len(STOPS)) as pool:
        runs = {stop: pool.submit(_open_then_stop, stop, tmp_path / stop.name) for stop in STOPS}
    for stop, run in runs.items():
        if (error := run.exception()) is not None:
            raise AssertionError(f"`wslab open` stopped by {stop.name}: {error}") from error


def _open_then_stop(stop: signal.Signals, folder: Path) -> None:
    folder.mkdir()
    command = [sys.executable, "-m", "lessons", "open", "01", "--dir", str(folder), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if found := OPEN_URL.search(line):
                    break
            else:
                pytest.fail("`wslab open` ended without printing a URL")
            base, token = found[1], found[2]
            notification = "/lab/api/settings/@jupyterlab/apputils-extension:notification"
            assert _api(base, token, notification)["settings"]["fetchNews"] == "false"
            spec = _api(base, token, "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
            assert spec["argv"][0] == sys.executable
            _api(base, token, "/api/kernels", method="POST")  # a notebook's kernel
            processes = descendants(process.pid)
            assert len(processes) >= 2, "JupyterLab and its kernel"

            process.send_signal(stop)
            output, _ = process.communicate(timeout=scaled(60))
        finally:
            if process.poll() is None:  # a failed check: stop it as a learner would
                process.terminate()
                process.wait(scaled(60))
    if stop == getattr(signal, "SIGKILL", None):
        # Nothing to wait on: JupyterLab is not this test's child.
        asyncio.run(eventually(lambda: not any(map(alive, processes)), timeout=60))
    else:
        assert process.returncode == 0, output
        assert "stopped" in output
    assert not [pid for pid in processes if alive(pid)]
