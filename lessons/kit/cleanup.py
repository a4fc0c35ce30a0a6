"""Stop, at interpreter exit, every process the kit started and nobody stopped.

The kit starts servers and Redis in their own sessions, so a Ctrl-C in a terminal reaches
only the program in charge of them. The flip side: when a notebook cell fails and its kernel
shuts down, nothing else would stop them. ``atexit`` runs on every normal exit, a kernel's
shutdown included.
"""

from __future__ import annotations

import atexit
import contextlib
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> object: ...


_running: set[Stoppable] = set()


def track(owner: Stoppable) -> None:
    """Remember ``owner`` until ``untrack``; stop it at exit if it is still there."""
    _running.add(owner)


def untrack(owner: Stoppable) -> None:
    _running.discard(owner)


@atexit.register
def stop_all() -> None:
    """Stop every server and Redis the kit started in this process and nobody stopped.

    A notebook leaves its servers running so that its pages stay reachable after "Run
    All"; the learner calls this when done (restarting or shutting down the kernel does
    the same, through ``atexit``)."""
    for owner in list(_running):
        with contextlib.suppress(Exception):
            owner.stop()
