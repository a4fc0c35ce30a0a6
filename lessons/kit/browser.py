"""Where the system Chromium is, and how wslab starts it (tests and the environment check)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REQUIRE_BROWSER = "WSLAB_REQUIRE_BROWSER"  # set (CI): a missing browser is an error, not a skip
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path | None:
    """The system Chromium: ``WSLAB_CHROMIUM`` if set, else ``chromium`` on PATH."""
    found = os.environ.get("WSLAB_CHROMIUM") or shutil.which("chromium")
    return Path(found) if found and Path(found).is_file() else None
