"""The start-here environment check reports every missing part and still gives its verdict."""

from __future__ import annotations

import nbformat
import pytest

from lessons import WORKBOOK_DIR
from lessons.kit.notebooks import code_cells, execute

START_HERE = WORKBOOK_DIR / "00_start_here.ipynb"

# Run first in the kernel: the course's own package cannot be imported and one dependency
# is not installed, as on a machine where `pip install -e .` was forgotten or went wrong.
MISSING_PARTS = """
import importlib.metadata
import sys

sys.modules["lessons"] = None  # "import lessons" now fails, as if it were not installed
_version = importlib.metadata.version


def _without_websockets(name):
    if name == "websockets":
        raise importlib.metadata.PackageNotFoundError(name)
    return _version(name)


importlib.metadata.version = _without_websockets
"""


@pytest.mark.timeout(120)
def test_every_missing_part_is_reported_and_the_verdict_still_comes() -> None:
    notebook = nbformat.read(START_HERE, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(MISSING_PARTS))
    execute(notebook, WORKBOOK_DIR, cell_timeout=60)  # raises if any cell fails
    printed = "".join(
        output.get("text", "")
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream"
    )
    for part in ["websockets", "the lessons package", "live echo round trip", "Redis"]:
        assert f"✗ {part}" in printed, f"{part} is not reported missing:\n{printed}"
    assert "✓ fastapi" in printed, "a part that is there is reported as missing"
    verdict = printed.rsplit("NOT READY. Fix these first:", 1)[-1].splitlines()[0]
    assert set(verdict.strip().split(", ")) == {
        "websockets",
        "the lessons package",
        "live echo round trip",
        "Redis",
    }


@pytest.mark.timeout(120)
def test_a_missing_nginx_is_optional_and_says_how_to_install_it() -> None:
    notebook = nbformat.read(START_HERE, as_version=4)
    without = "import lessons.kit.proxy\n\nlessons.kit.proxy.find_nginx = lambda: None\n"
    notebook.cells.insert(0, nbformat.v4.new_code_cell(without))
    execute(notebook, WORKBOOK_DIR, cell_timeout=60)
    printed = "".join(
        output.get("text", "")
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream"
    )
    assert "✗ nginx (optional)" in printed and "apt-get install nginx" in printed, printed
    assert "READY: every check passed." in printed, printed
