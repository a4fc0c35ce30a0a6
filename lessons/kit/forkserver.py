"""Server processes forked from ``multiprocessing``'s forkserver, which has imported the
libraries once, instead of spawned.

A new Python process spends most of a second of CPU importing FastAPI, uvicorn and
``websockets`` before it serves; the test suite starts over a hundred server processes.
With ``WSLAB_FORK_SERVER=1`` (the test suite sets it), ``start_child`` forks each from the
forkserver (``multiprocessing.get_context("forkserver")``, started on first use by each
process that starts servers; ``set_forkserver_preload(PRELOAD)``) instead of spawning
``python -m lessons.kit.child``. From outside a forked server is the same: its own process
and session, the same entry point, its output on a pipe, the same signals stop it and its
exit status is reported. Its environment is applied after the fork, before the kit (whose
settings are read at import) and the app are imported. A server whose environment changes
a ``PYTHON*`` or ``WEBSOCKETS_*`` variable (read by Python or by ``websockets`` at
startup) is spawned, as is every server outside Linux.

What multiprocessing leaves to us (Python 3.11):
- its forkserver ends when the processes that hold its "alive" pipe do, and each forked
  process inherits that pipe: the child replaces every inherited descriptor it was not
  given with /dev/null, so the forkserver ends with its starter, even a SIGKILLed one;
- nothing stops what it forked then: the child asks Linux for SIGKILL when its parent,
  the forkserver, ends (``prctl(PR_SET_PDEATHSIG)``; SIGTERM would leave a paused server
  paused), then checks that its parent still is the forkserver;
- the forkserver and the resource tracker started with it live as long as the starting
  process; ``helper`` tells them by their command line (for the leak checks).

A Jupyter kernel spawns its servers: ipykernel (7.4) signals every process in the kernel's
process group at shutdown and waits while any is left, zombies included, and the resource
tracker ignores SIGTERM. Measured: lesson 02's notebook, run as the suite runs it, took
18.6 s with its servers forked in the kernel (8.9 s with the hand-written warm parent this
replaced, which had a session of its own): the kernel ended only when jupyter_client sent
it SIGTERM. For the same reason the testing notebook's pytest runs keep their own helper
(notebooks/testing/run_pytest.py).

Measured (lesson 01's app, start to ready, medians of 10, 2 cores at load 1.3, interleaved):
spawned 367 ms; forked by the hand-written warm parent this replaced 51 ms; forked here 47
and 56 ms (63-76 ms before the kit was preloaded). A process's first server also waits for
the forkserver's imports: 457-507 ms here, 487 ms with the warm parent. At load 2-3,
earlier: spawned 757 ms, the warm parent 50-79 ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

ENABLE = "WSLAB_FORK_SERVER"
CHILD = "lessons.kit.child"
# What the forkserver imports once: the starting program's main module (multiprocessing's
# default; each fork would import it again otherwise), what a server imports, and the kit
# (each fork imports it again, for its settings, but not to unpickle its target: 20 ms).
PRELOAD = [
    "__main__",
    "fastapi",
    "fastapi.responses",
    "pydantic.v1",  # FastAPI imports it at an app's first route: 120 ms a server, under load
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "websockets.asyncio.client",
    "websockets.asyncio.server",
    "redis.asyncio",
    "jwt",
    CHILD,
]
# Environment variables read at startup by Python or by a preloaded library.
READ_AT_IMPORT = ("PYTHON", "WEBSOCKETS_")
# The command lines of multiprocessing's forkserver (and of what it forks) and tracker.
HELPERS = (b"from multiprocessing.forkserver import", b"from multiprocessing.resource_tracker")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


class ForkedProcess(_context.Process):  # type: ignore[name-defined,misc]
    """A forked server, with the parts of ``subprocess.Popen`` the kit uses."""

    stdout: IO[str]

    @property
    def returncode(self) -> int | None:
        return self.exitcode

    def poll(self) -> int | None:
        return self.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.join(timeout)
        if self.exitcode is None:
            raise subprocess.TimeoutExpired(CHILD, timeout or 0)
        return self.exitcode

    def send_signal(self, sig: int) -> None:
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def helper(pid: int) -> bool:
    """Whether process ``pid`` is multiprocessing's forkserver or resource tracker (or a
    process forked by the forkserver, which has its command line)."""
    with contextlib.suppress(OSError):
        return any(mark in Path(f"/proc/{pid}/cmdline").read_bytes() for mark in HELPERS)
    return False


def start_child(
    sock: socket.socket, args: list[str], env: dict[str, str]
) -> subprocess.Popen[str] | ForkedProcess:
    """``python -m lessons.kit.child FD *args`` serving on ``sock``, with output on a pipe
    (``.stdout``, text) and ``env`` as its whole environment: forked when it can be."""
    changed = {k for k in env.keys() | os.environ.keys() if env.get(k) != os.environ.get(k)}
    if (
        os.environ.get(ENABLE) == "1"
        and sys.platform == "linux"
        and not _in_a_kernel()
        and not any(name.startswith(READ_AT_IMPORT) for name in changed - {"PYTHONUNBUFFERED"})
    ):
        mine, theirs = socket.socketpair()
        with mine, theirs:
            process = ForkedProcess(target=_serve, args=(sock, theirs, args, env), daemon=True)
            process.start()
            process.stdout = mine.makefile("r", encoding="utf-8", errors="replace")
        return process
    return subprocess.Popen(
        [sys.executable, "-m", CHILD, str(sock.fileno()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        pass_fds=[sock.fileno()],
        env=env,
        start_new_session=True,
    )


def _in_a_kernel() -> bool:
    kernel = sys.modules.get("ipykernel.kernelapp")  # imported, not always started
    return kernel is not None and kernel.IPKernelApp.initialized()


def _serve(
    sock: socket.socket, output: socket.socket, args: list[str], env: dict[str, str]
) -> None:
    """In the forked process: become what ``python -m lessons.kit.child`` would be."""
    os.setsid()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if not helper(os.getppid()):  # the forkserver has already ended
        os.kill(os.getpid(), signal.SIGKILL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in {int(fd) for fd in os.listdir("/proc/self/fd")} - {sock.fileno(), output.fileno()}:
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            os.fstat(fd)
            os.dup2(null, fd)
    for fd in (1, 2):
        os.dup2(output.fileno(), fd)
    os.close(null)
    output.close()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    if sys.path[:1] != [os.getcwd()]:
        sys.path.insert(0, os.getcwd())  # as with ``python -m``
    for name in [n for n in sys.modules if n.startswith("lessons.kit")]:
        del sys.modules[name]  # the kit reads its settings at import: read them anew
    sys.argv = [CHILD, str(sock.fileno()), *args]
    importlib.import_module(CHILD).main(sys.argv[1:])
