"""matplotlib, imported quietly: lesson 01's plot and ``wslab bench --plot`` use it."""

from __future__ import annotations

import logging
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot, imported without the one-time font cache notice on stderr."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import matplotlib.pyplot as plt
    finally:
        logger.setLevel(level)
    return plt
