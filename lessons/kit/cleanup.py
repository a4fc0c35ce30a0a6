"""Stopping what the kit started: at interpreter exit, on a signal, and one process at a time.

The kit starts servers and Redis in their own sessions, so a Ctrl-C in a terminal reaches
only the program in charge of them. The flip side: when a notebook cell fails and its kernel
shuts down, nothing else would stop them. ``atexit`` runs on every normal exit, a kernel's
shutdown included, but not when a signal ends the program: ``stop_signals_interrupt`` turns
SIGTERM and SIGHUP into the KeyboardInterrupt a Ctrl-C raises, so that a program's own
cleanup (``with`` blocks, ``finally``, ``atexit``) runs whichever of them stops it.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol

from lessons.kit.timing import scaled

# Ctrl-C, `kill`/systemd/`docker stop`, and a closed terminal: each one stops a program.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP all raise KeyboardInterrupt in the main
    thread, once: later ones are ignored while the program stops, so its cleanup (bounded
    in time) is not cut short. The previous handlers come back on exit."""
    stopping = False

    def interrupt(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt(signal.Signals(sig).name)

    original = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in original.items():
            signal.signal(sig, handler)


def end_process(
    process: subprocess.Popen[Any], sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0
) -> int:
    """Send ``sig`` to a running ``process``, wait ``timeout`` seconds for it to end, then
    SIGKILL it and wait again; returns its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(scaled(timeout))
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(scaled(5.0))
