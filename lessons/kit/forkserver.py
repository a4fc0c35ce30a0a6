"""A warm parent for ``SubprocessServer``: the libraries imported once, each server forked.

A new Python process spends most of a second of CPU importing FastAPI, uvicorn and
``websockets`` before it serves; the test suite starts over a hundred server processes.
With ``WSLAB_FORK_SERVER=1`` (the test suite sets it), ``start_child`` asks a warm parent,
started on first use by each process that starts servers, to fork them instead of spawning
``python -m lessons.kit.child``. From outside a forked server is the same: its own process
and session, the same entry point, its output on a pipe, the same signals stop it and its
exit status is reported (by the warm parent, which reaps it). When the process that started
a warm parent ends, the warm parent stops what is left of its servers and ends too.

Its environment is applied after the fork, before the kit (whose settings are read at
import) and the app are imported; the warm parent imports only libraries. A server whose
environment changes a ``PYTHON*`` or ``WEBSOCKETS_*`` variable (read by Python or by
``websockets`` at startup) is spawned, as it is where pidfds are missing (not Linux).

Measured (lesson 01's app, start to ready, medians of 10, 2 cores at load 10): spawned
1,960 ms, forked 100-215 ms. Why not ``multiprocessing``'s forkserver with
``set_forkserver_preload``, which would fork as fast? On Python 3.11 its server exits alone
when the starting process dies and leaves the servers it forked running (this one stops
them: tests/test_forkserver.py), and its process id, which the leak checks must tell from
a leak, is private.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any

from lessons.kit.timing import scaled

ENABLE = "WSLAB_FORK_SERVER"
THREAD_NAME = "wslab-fork-server"
CHILD = "lessons.kit.child"
WARM_PARENT = "import sys; from lessons.kit.forkserver import serve_forks; serve_forks(sys.argv[1])"
# Libraries the apps and the kit import, in the order a server imports them.
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
# How long servers left behind by an ended parent get to stop before SIGKILL, seconds.
GRACE = 5.0
# How long a request may wait for the warm parent (its first one waits for its imports).
ANSWER_SECONDS = 30.0


class ForkedProcess:
    """A server forked by the warm parent: the part of ``subprocess.Popen`` the kit uses."""

    def __init__(self, args: list[str], pid: int, stdout: IO[str], changed: threading.Condition):
        self.args = args
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._changed = changed

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self._changed:
            if not self._changed.wait_for(lambda: self.returncode is not None, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def orphaned(self) -> None:
        """Its warm parent is gone, and with it the exit status: SIGKILL it, wait for it."""
        with contextlib.suppress(ProcessLookupError):
            pidfd = os.pidfd_open(self.pid)
            self.send_signal(signal.SIGKILL)
            _wait_for_exits({pidfd}, GRACE)
            os.close(pidfd)
        with self._changed:
            self.returncode = -signal.SIGKILL
            self._changed.notify_all()


class _WarmParent:
    """This process's side: one control socket to the warm parent, one thread reading it."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WARM_PARENT, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        self.changed = threading.Condition()
        self.pending: dict[int, tuple[list[str], IO[str]]] = {}
        self.started: dict[int, ForkedProcess | str] = {}
        self.running: dict[int, ForkedProcess] = {}
        self.gone = False
        self.requests = 0
        threading.Thread(target=self._read, name=THREAD_NAME, daemon=True).start()

    def fork(self, fd: int, args: list[str], env: dict[str, str]) -> ForkedProcess:
        read_end, write_end = os.pipe()
        stdout = open(read_end, encoding="utf-8", errors="replace")
        with self.changed:
            self.requests += 1
            request = self.requests
            self.pending[request] = (args, stdout)
        message = {"request": request, "args": args, "env": env, "cwd": os.getcwd()}
        try:
            socket.send_fds(self.control, [json.dumps(message).encode()], [fd, write_end])
        except OSError:
            stdout.close()
            raise
        finally:
            os.close(write_end)
        with self.changed:
            answered = self.changed.wait_for(
                lambda: request in self.started or self.gone, scaled(ANSWER_SECONDS)
            )
            started = self.started.pop(request, "the warm parent ended")
        if not answered:  # stuck: end it (and whatever it started), say so
            self.process.kill()
            with self.changed:
                self.gone = True  # the next server gets a new one
            started = f"no answer within {ANSWER_SECONDS} s"
        if isinstance(started, str):
            stdout.close()
            raise RuntimeError(f"the fork server could not start a server: {started}")
        return started

    def _read(self) -> None:
        while True:
            try:
                data = self.control.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self.changed:
                if "exited" in message:
                    if process := self.running.pop(message["exited"], None):
                        process.returncode = message["status"]
                elif "error" in message:
                    self.pending.pop(message["request"], None)
                    self.started[message["request"]] = message["error"]
                else:
                    args, stdout = self.pending.pop(message["request"])
                    process = ForkedProcess(args, message["pid"], stdout, self.changed)
                    self.running[process.pid] = self.started[message["request"]] = process
                self.changed.notify_all()
        self.process.wait()  # the control socket closes when the warm parent ends
        self.control.close()
        with self.changed:
            self.gone = True
            orphans = list(self.running.values())
            self.changed.notify_all()
        for process in orphans:  # the warm parent was killed: so are its servers
            process.orphaned()


_lock = threading.Lock()
_parent: _WarmParent | None = None


def _running() -> _WarmParent | None:
    if _parent is None or _parent.gone or _parent.process.poll() is not None:
        return None
    return _parent


def warm_parents() -> set[int]:
    """The pid of this process's warm parent, if one is running."""
    return {parent.process.pid} if (parent := _running()) else set()


def _can_fork(env: dict[str, str]) -> bool:
    if os.environ.get(ENABLE) != "1" or not hasattr(os, "pidfd_open"):
        return False
    base = parent.env if (parent := _running()) else os.environ
    changed = {k for k in env.keys() | base.keys() if env.get(k) != base.get(k)}
    return not any(name.startswith(READ_AT_IMPORT) for name in changed - {"PYTHONUNBUFFERED"})


def start_child(
    sock: socket.socket, args: list[str], env: dict[str, str]
) -> subprocess.Popen[str] | ForkedProcess:
    """``python -m lessons.kit.child FD *args`` serving on ``sock``, with output on a pipe
    (``.stdout``, text) and ``env`` as its whole environment: forked when it can be."""
    global _parent
    if _can_fork(env):
        with _lock:
            parent = _parent = _running() or _WarmParent()
        return parent.fork(sock.fileno(), args, env)
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


# The warm parent's side.


def serve_forks(fd: str) -> None:
    """The warm parent: import ``PRELOAD``, then fork a server for each request read from
    the control socket ``fd`` until it closes."""
    control = socket.socket(fileno=int(fd))
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    children: dict[int, int] = {}  # pidfd -> pid
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is not control:
                    pidfd = key.fd
                    selector.unregister(pidfd)
                    os.close(pidfd)
                    _, status = os.waitpid(children.pop(pidfd), 0)
                    _send(control, exited=key.data, status=os.waitstatus_to_exitcode(status))
                    continue
                try:
                    data, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
                except OSError:
                    data, fds = b"", []
                if not data:  # the process that started us ended
                    _stop(children)
                    return
                request = json.loads(data)
                try:
                    pid = os.fork()
                except OSError as exc:  # out of processes or memory: say so, go on
                    _send(control, request=request["request"], error=str(exc))
                    pid = None
                if pid == 0:
                    _child(request, fds, [control.fileno(), selector.fileno(), *children])
                for fd in fds:
                    os.close(fd)
                if pid is None:
                    continue
                pidfd = os.pidfd_open(pid)
                children[pidfd] = pid
                selector.register(pidfd, selectors.EVENT_READ, pid)
                _send(control, request=request["request"], pid=pid)


def _send(control: socket.socket, **message: Any) -> None:
    with contextlib.suppress(OSError):
        control.send(json.dumps(message).encode())


def _stop(children: dict[int, int]) -> None:
    """SIGTERM every server left (SIGCONT first: a paused one must run to take it), give
    them ``GRACE`` seconds, SIGKILL the rest, reap them all."""
    for pid in children.values():
        os.kill(pid, signal.SIGCONT)  # not reaped yet: the pid is still theirs
        os.kill(pid, signal.SIGTERM)
    _wait_for_exits(set(children), GRACE)
    for pid in children.values():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _wait_for_exits(pidfds: set[int], timeout: float) -> None:
    """Wait until every process of ``pidfds`` has ended, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as waiting:
        for pidfd in pidfds:
            waiting.register(pidfd, selectors.EVENT_READ)
        while waiting.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in waiting.select(left):
                waiting.unregister(key.fd)


def _child(request: dict[str, Any], fds: list[int], inherited: list[int]) -> None:
    """In the forked process: become what ``python -m lessons.kit.child`` would be."""
    code = 1
    try:
        listen_fd, out_fd = fds
        os.setsid()
        for fd in inherited:
            os.close(fd)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]
        os.environ.clear()
        os.environ.update(request["env"])
        for name in [n for n in sys.modules if n.startswith("lessons.kit")]:
            del sys.modules[name]  # the kit reads its settings at import: read them anew
        sys.argv = [CHILD, str(listen_fd), *request["args"]]
        importlib.import_module(CHILD).main(sys.argv[1:])
        code = 0
    except SystemExit as exc:  # as the interpreter would: a message is printed, then 1
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
