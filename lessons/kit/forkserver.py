"""Processes forked from a warm one: ``multiprocessing``'s forkserver, made to end with the
process that started them.

A new Python process spends most of a second of CPU importing FastAPI, uvicorn and
``websockets`` before it serves; the test suite starts over a hundred server processes,
and the testing notebook runs pytest again and again. ``start`` forks each from the
forkserver (``multiprocessing.get_context("forkserver")``, started on first use by each
process that starts them), which has imported the libraries once (``preload``).

The forked process is made to look spawned: its own session, only the descriptors passed
in its arguments (the others become /dev/null: one, inherited from the forkserver, would
keep it running), stdin from /dev/null. It ends when the process that started it does,
even by SIGKILL: the forkserver exits once its starter has (Python 3.11 leaves what it
forked running), and the child asks Linux for SIGKILL when its parent ends (``prctl``'s
``PR_SET_PDEATHSIG``; SIGTERM would leave a paused server paused), then checks that its
parent is still the forkserver. The forkserver, and ``multiprocessing``'s resource tracker
started with it, live as long as the process that started them; ``helper`` tells them by
their command line.

With ``WSLAB_FORK_SERVER=1`` (the test suite sets it), ``start_child`` forks servers this
way; otherwise, and when a server's environment changes a ``PYTHON*`` or ``WEBSOCKETS_*``
variable (read by Python or by ``websockets`` at startup), it spawns
``python -m lessons.kit.child``, as ``wslab serve`` does (one server: forking saves it
nothing).

Measured (lesson 01's app, start to ready, medians of 10, 2 cores at load 2-4): spawned
MEASURE ms; forked by the hand-written warm parent this replaced MEASURE ms; forked by
``multiprocessing`` MEASURE ms. The first server of a process waits for the forkserver's
imports: MEASURE ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import multiprocessing.context
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ENABLE = "WSLAB_FORK_SERVER"
CHILD = "lessons.kit.child"
# What a server imports, so that no server pays for it.
PRELOAD = (
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
)
# Environment variables read at startup by Python or by a preloaded library.
READ_AT_IMPORT = ("PYTHON", "WEBSOCKETS_")
# The command lines of multiprocessing's forkserver and resource tracker.
HELPERS = (b"from multiprocessing.forkserver import", b"from multiprocessing.resource_tracker")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_context = multiprocessing.get_context("forkserver")
# The starting program's main module too (multiprocessing's default): otherwise each fork
# imports it again, as multiprocessing does; a script must guard its code with
# ``if __name__ == "__main__":``, as multiprocessing asks.
_preload: dict[str, None] = {"__main__": None}


class ForkedProcess(multiprocessing.context.ForkServerProcess):
    """A forked process, with the parts of ``subprocess.Popen`` the kit uses."""

    stdout: Any = None

    @property
    def returncode(self) -> int | None:
        return self.exitcode

    def poll(self) -> int | None:
        return self.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.join(timeout)
        if self.exitcode is None:
            raise subprocess.TimeoutExpired(self.name, timeout or 0)
        return self.exitcode

    def send_signal(self, sig: int) -> None:
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def start(target: Callable[..., object], *args: Any, preload: Iterable[str]) -> ForkedProcess:
    """``target(*args)`` in a process forked from this process's forkserver, which imports
    ``preload`` if this call starts it. Sockets and connections in ``args`` are passed."""
    _preload.update(dict.fromkeys(preload))
    _context.set_forkserver_preload(list(_preload))
    process = ForkedProcess(target=_detached, args=(target, *args), daemon=True)
    process.start()
    return process


def helper(pid: int) -> bool:
    """Whether process ``pid`` is multiprocessing's forkserver or resource tracker (or a
    process forked by the forkserver, which has its command line)."""
    with contextlib.suppress(OSError):
        return any(mark in Path(f"/proc/{pid}/cmdline").read_bytes() for mark in HELPERS)
    return False


def _detached(target: Callable[..., object], *args: Any) -> None:
    os.setsid()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if not helper(os.getppid()):  # the forkserver had already ended
        os.kill(os.getpid(), signal.SIGKILL)
    passed = {arg.fileno() for arg in args if hasattr(arg, "fileno")}
    null = os.open(os.devnull, os.O_RDWR)
    for fd in {int(fd) for fd in os.listdir("/proc/self/fd")} - passed - {1, 2, null}:
        with contextlib.suppress(OSError):  # the listing's own descriptor is closed
            os.fstat(fd)
            os.dup2(null, fd)
    os.close(null)
    target(*args)


def start_child(
    sock: socket.socket, args: list[str], env: dict[str, str]
) -> subprocess.Popen[str] | ForkedProcess:
    """``python -m lessons.kit.child FD *args`` serving on ``sock``, with output on a pipe
    (``.stdout``, text) and ``env`` as its whole environment: forked when it can be."""
    changed = {k for k in env.keys() | os.environ.keys() if env.get(k) != os.environ.get(k)}
    if (
        os.environ.get(ENABLE) == "1"
        and sys.platform == "linux"
        and not any(name.startswith(READ_AT_IMPORT) for name in changed - {"PYTHONUNBUFFERED"})
    ):
        mine, theirs = socket.socketpair()
        with mine, theirs:
            process = start(_serve, sock, theirs, args, env, preload=PRELOAD)
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


def _serve(
    sock: socket.socket, output: socket.socket, args: list[str], env: dict[str, str]
) -> None:
    """In the forked process: become what ``python -m lessons.kit.child`` would be."""
    for fd in (1, 2):
        os.dup2(output.fileno(), fd)
    output.close()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    if sys.path[:1] != [os.getcwd()]:
        sys.path.insert(0, os.getcwd())
    for name in [n for n in sys.modules if n.startswith("lessons.kit")]:
        del sys.modules[name]  # the kit reads its settings at import: read them anew
    sys.argv = [CHILD, str(sock.fileno()), *args]
    importlib.import_module(CHILD).main(sys.argv[1:])
