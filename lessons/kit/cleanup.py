"""Stopping what the kit started: at interpreter exit, on a signal, and one process at a time.

The kit starts servers and Redis in their own sessions, so a Ctrl-C in a terminal reaches
only the program in charge of them. The flip side: when a notebook's kernel ends, nothing
else would stop them. ``atexit`` runs on every normal exit, and a kernel asked to restart or
shut down (Kernel → Restart, Kernel → Shut Down, closing JupyterLab, the end of a headless
run) exits normally; a kernel that takes too long is then sent SIGTERM, so in a kernel the
kit stops its servers on SIGTERM too, then lets the signal end the process. Elsewhere a
signal ends a program without ``atexit``: ``stop_signals_interrupt`` turns SIGTERM and
SIGHUP into the KeyboardInterrupt a Ctrl-C raises, so that a program's own cleanup (``with``
blocks, ``finally``, ``atexit``) runs whichever of them stops it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing.util  # noqa: F401 (its exit handler: see stop_all)
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol, Self

from lessons.kit.timing import scaled

# Ctrl-C, `kill`/systemd/`docker stop`, and a closed terminal: each one stops a program.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long in all a kernel asked to shut down may take to stop its servers: jupyter_client
# sends SIGTERM after half of it and SIGKILL at the end. Its default, 5 s, leaves 2.5 s
# before SIGTERM; ``wslab open`` and the headless runner give this instead.
SHUTDOWN_SECONDS = 20.0


class Stoppable(Protocol):
    def stop(self) -> object: ...


class Process(Protocol):
    """What ``end_process`` needs of a process: a ``subprocess.Popen`` has it."""

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


_running: set[Stoppable] = set()


class Managed:
    """``with X(...) as x:`` starts it and stops it again, even when the block fails.

    The kit's servers, Redis and proxies define ``start()`` (returning themselves) and
    ``stop()``; notebooks call those two directly, tests use the ``with`` form.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_stopping = threading.Event()


def track(owner: Stoppable) -> None:
    """Remember ``owner`` until ``untrack``; stop it at exit if it is still there."""
    _running.add(owner)


def untrack(owner: Stoppable) -> None:
    _running.discard(owner)


# multiprocessing's exit handler, registered when multiprocessing.util is imported (above),
# ends the processes it started and waits for them, a paused one forever: this one (atexit
# calls the last registered first) stops them before.
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


def _terminated(signum: int, _frame: FrameType | None) -> None:
    if _stopping.is_set():  # the exit handler is already at it: let it finish
        return
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _stop_on_sigterm_in_a_kernel() -> None:
    if (
        "ipykernel" in sys.modules
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _terminated)


_stop_on_sigterm_in_a_kernel()


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
    process: Process, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0
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


async def leaves_promptly(
    context: Callable[[], contextlib.AbstractAsyncContextManager[object]],
    times: int = 40,
    timeout: float = 5.0,
) -> None:
    """Enter ``context()`` (an app's lifespan) and leave it again ``times`` times, from 0 to
    10 ms after entering: wherever a cancellation then lands in the tasks it started.
    TimeoutError if one is not left within ``timeout`` s (it is then cancelled until it is)."""

    async def cycle(delay: float) -> None:
        async with context():
            await asyncio.sleep(delay)

    for step in range(times):
        task = asyncio.create_task(cycle(step * 0.01 / times))
        if not (await asyncio.wait([task], timeout=scaled(timeout)))[0]:
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
            raise TimeoutError(f"the context was not left within {timeout} s (cycle {step})")
        task.result()
