"""Stop, at interpreter exit, every process the kit started and nobody stopped.

The kit starts servers and Redis in their own sessions, so a Ctrl-C in a terminal reaches
only the program in charge of them. The flip side: when a notebook's kernel ends, nothing
else would stop them. ``atexit`` runs on every normal exit, and a kernel asked to restart or
shut down (Kernel → Restart, Kernel → Shut Down, closing JupyterLab, the end of a headless
run) exits normally. A kernel that takes too long is then sent SIGTERM, which skips
``atexit``: in a kernel, the kit stops its servers on SIGTERM too, then lets it end the
process as it would have.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Protocol

# How long in all a kernel asked to shut down may take to stop its servers: jupyter_client
# sends SIGTERM after half of it and SIGKILL at the end. Its default, 5 s, leaves 2.5 s
# before SIGTERM; ``wslab open`` and the headless runner give this instead.
SHUTDOWN_SECONDS = 20.0


class Stoppable(Protocol):
    def stop(self) -> object: ...


_running: set[Stoppable] = set()
_stopping = threading.Event()


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
    the same)."""
    _stopping.set()
    try:
        for owner in list(_running):
            with contextlib.suppress(Exception):
                owner.stop()
    finally:
        _stopping.clear()


def _terminated(signum: int, _frame: object) -> None:
    if _stopping.is_set():  # the exit handler is already at it: let it finish
        return
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _stop_on_sigterm_in_a_kernel() -> None:
    in_kernel = "ipykernel" in sys.modules
    if (
        in_kernel
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _terminated)


_stop_on_sigterm_in_a_kernel()
