"""Execute notebooks headless with nbclient, as CI and ``wslab run`` do.

A notebook runs in its own folder (so it can read the lesson's files), in a fresh
kernel, with a per-cell timeout. Cells tagged ``raises-exception`` may fail, and must:
a demonstration of an error that no longer raises is a lesson that has gone stale.
A cell writes to stderr only if it is tagged ``shows-log`` (the log is the lesson there):
anywhere else a stray log line or warning is a failure, as it would be a pink box in
JupyterLab.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from traitlets.config import Config

from lessons.kit.cleanup import SHUTDOWN_SECONDS

RAISES = "raises-exception"
SHOWS_LOG = "shows-log"


@dataclass
class NotebookResult:
    """What happened when a notebook ran."""

    path: Path
    seconds: float
    cells: int
    error: str | None = None
    failing_cell: int | None = None
    cell_seconds: list[float] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None  # as executed, outputs included

    @property
    def slowest(self) -> tuple[int, float]:
        """The number of the slowest code cell (from 1) and its seconds."""
        if not self.cell_seconds:
            return 0, 0.0
        seconds = max(self.cell_seconds)
        return self.cell_seconds.index(seconds) + 1, seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _source_head(cell: nbformat.NotebookNode, lines: int = 3) -> str:
    return "\n".join("    " + line for line in cell.source.splitlines()[:lines])


def _ends(text: str, head: int = 300, tail: int = 1500) -> str:
    """``text``, or its start and its end when long: a traceback's cause is at its end."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n    [...]\n{text[-tail:]}"


After = Callable[[NotebookClient], Awaitable[None]]


class _Client(NotebookClient):
    """A NotebookClient that, once every cell has run, awaits ``after(self)`` in the same
    kernel (to run more cells against the state the notebook built) before shutting down."""

    after: After | None = None

    async def async_execute(self, reset_kc: bool = False, **kwargs: Any) -> Any:
        self.reset_execution_trackers()
        async with self.async_setup_kernel(**kwargs):
            assert self.kc is not None
            await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
            for index, cell in enumerate(self.nb.cells):
                await self.async_execute_cell(
                    cell, index, execution_count=self.code_cells_executed + 1
                )
            if self.after is not None:
                await self.after(self)
        return self.nb

    execute = run_sync(async_execute)


async def run_source(client: NotebookClient, source: str) -> nbformat.NotebookNode:
    """Run ``source`` as an extra cell in ``client``'s kernel; the executed cell, errors kept."""
    cell = nbformat.v4.new_code_cell(source)
    allow, client.allow_errors = client.allow_errors, True
    client.nb.cells.append(cell)  # nbclient stores the executed cell back at its index
    try:
        await client.async_execute_cell(cell, len(client.nb.cells) - 1)
    finally:
        client.allow_errors = allow
        executed = client.nb.cells.pop()
    return executed


def execute(
    notebook: nbformat.NotebookNode,
    folder: Path,
    *,
    cell_timeout: float,
    after: After | None = None,
    **options: Any,
) -> None:
    """Execute ``notebook`` in place, in a fresh kernel whose working directory is ``folder``,
    then ``after(client)`` if given, in the same kernel.

    The kernel's own log (not the cells' output) goes to a file, shown only if it dies.
    At the end the kernel is shut down the way JupyterLab does it, by asking it to exit,
    and it stops every server the notebook left running (the kit does at exit); it gets
    ``SHUTDOWN_SECONDS`` for that before it is terminated.
    """
    manager: dict[str, Any] = {"shutdown_wait_time": SHUTDOWN_SECONDS}
    with (
        tempfile.TemporaryDirectory(prefix="wslab-kernel-") as sockets,
        tempfile.TemporaryFile("w+") as kernel_log,
    ):
        if os.name == "posix":  # Unix sockets: TCP ports chosen free can be taken before use
            manager |= {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}
        client = _Client(
            notebook,
            timeout=int(cell_timeout),
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
            config=Config({"KernelManager": manager}),
            **options,
        )
        client.after = after
        try:
            client.execute(stderr=kernel_log)
        except DeadKernelError as exc:
            kernel_log.seek(0)
            raise DeadKernelError(f"{exc}\n  kernel log:\n{kernel_log.read()[-2000:]}") from exc


def run_notebook(
    path: str | Path,
    *,
    cell_timeout: float = 120,
    on_cell: Callable[[int, int], None] | None = None,
    after: After | None = None,
) -> NotebookResult:
    """Execute ``path`` top to bottom; ``on_cell(done, total)`` is called after each code cell,
    and ``after(client)`` once they have all run, in the same kernel."""
    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    cells = code_cells(notebook)
    code_number = {
        index: number
        for number, index in enumerate(
            (i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"), start=1
        )
    }
    current = 0
    result = NotebookResult(path, 0.0, len(cells), cell_seconds=[0.0] * len(cells))
    cell_started_at = time.perf_counter()

    def cell_started(cell_index: int, **_: object) -> None:
        nonlocal current, cell_started_at
        if cell_index in code_number:  # the hook also sees markdown cells
            current = code_number[cell_index]
            cell_started_at = time.perf_counter()

    def cell_executed(**_: object) -> None:
        if current:
            result.cell_seconds[current - 1] = time.perf_counter() - cell_started_at
        if on_cell is not None:
            on_cell(current, len(cells))

    started = time.perf_counter()
    try:
        execute(
            notebook,
            path.parent,
            cell_timeout=cell_timeout,
            on_cell_start=cell_started,
            on_cell_executed=cell_executed,
            after=after,
        )
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        result.failing_cell = current
        result.error = _summarise(exc, cells[current - 1] if current else None)
    if result.ok:
        for index, cell in enumerate(cells, start=1):
            if RAISES in cell.metadata.get("tags", []) and not any(
                output.output_type == "error" for output in cell.outputs
            ):
                result.failing_cell = index
                result.error = (
                    f"cell {index} is tagged {RAISES!r} but raised nothing:\n{_source_head(cell)}"
                )
                break
    if result.ok:
        noisy = noisy_cells(cells)
        if noisy:
            index, text = noisy[0]
            result.failing_cell = index
            result.error = (
                f"cell {index} wrote to stderr (tag it {SHOWS_LOG!r} if the log is the lesson):\n"
                f"    {_ends(text.strip())}\n  in:\n{_source_head(cells[index - 1])}"
            )
    result.seconds = time.perf_counter() - started
    result.notebook = notebook
    return result


def _summarise(exc: Exception, cell: nbformat.NotebookNode | None) -> str:
    if isinstance(exc, CellExecutionError):
        problem = f"{exc.ename}: {exc.evalue}"
        trace = str(exc).strip().splitlines()[-12:]
    else:
        problem, trace = str(exc), []
    head = f"{problem}\n  in:\n{_source_head(cell)}" if cell is not None else problem
    return head + ("\n  traceback (last lines):\n    " + "\n    ".join(trace) if trace else "")


def noisy_cells(cells: list[nbformat.NotebookNode]) -> list[tuple[int, str]]:
    """Executed code cells that wrote to stderr without the ``shows-log`` tag: (number, text)."""
    noisy = []
    for index, cell in enumerate(cells, start=1):
        if SHOWS_LOG in cell.metadata.get("tags", []):
            continue
        text = "".join(
            output.get("text", "")
            for output in cell.get("outputs", [])
            if output.output_type == "stream" and output.name == "stderr"
        )
        if text.strip():
            noisy.append((index, text))
    return noisy


def outputs_stored(path: str | Path) -> list[int]:
    """Numbers of the code cells of ``path`` that carry outputs or execution counts."""
    notebook = nbformat.read(Path(path), as_version=4)
    return [
        index
        for index, cell in enumerate(code_cells(notebook), start=1)
        if cell.get("outputs") or cell.get("execution_count") is not None
    ]
