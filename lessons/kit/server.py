"""Live uvicorn servers for notebooks and tests: in a background thread, or in a subprocess.

Both bind their listening socket themselves (``127.0.0.1:0`` unless told otherwise) and
hand it to uvicorn, so no other program can take the port between choosing and serving.
Both are context managers and also offer plain ``start()``/``stop()`` for notebook cells.

Every kit server (these two, and so ``wslab serve``) runs with
``SERVER_SETTINGS`` and on a socket from ``bind_socket``: the choice measured side by side
by ``lessons.bench.implementations`` (docs/websocket-implementations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import uvicorn

from lessons.kit.cleanup import Managed, end_process, track, untrack
from lessons.kit.forkserver import ForkedProcess, start_child
from lessons.kit.timing import scaled

READY_LINE = "WSLAB READY"
# A stopping server whose thread is still alive after this long gets its stragglers cancelled.
STRAGGLER_SECONDS = 1.0
# uvicorn's default protocols, named, and its keepalive ping every WSLAB_WS_PING seconds
# (uvicorn's 20 unless set), answered within as long.
_PING = float(os.environ.get("WSLAB_WS_PING", "20"))
SERVER_SETTINGS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "http": "h11",
    "ws_ping_interval": _PING,
    "ws_ping_timeout": _PING,
}
# The kernel drops a connection whose sent data stays unacknowledged this long (seconds):
# a peer that stopped reading, or is gone, is released instead of held with its backlog.
USER_TIMEOUT = float(os.environ.get("WSLAB_TCP_USER_TIMEOUT", "10"))


def bind_socket(
    host: str = "127.0.0.1", port: int = 0, *, user_timeout: float | None = USER_TIMEOUT
) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises OSError with a readable message.

    Accepted connections inherit ``TCP_USER_TIMEOUT`` = ``user_timeout`` seconds (Linux;
    None leaves the kernel's default, which holds a stalled peer for as long as it ACKs).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if user_timeout is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
            timeout_ms = round(user_timeout * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, timeout_ms)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {hostport(host, port)}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A loopback port free right now: only for programs that cannot take a bound socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hostport(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Addresses:
    """URLs of a server listening on ``host:port``."""

    host: str
    port: int

    @property
    def http_url(self) -> str:
        return f"http://{hostport(self.host, self.port)}"

    def ws_url(self, path: str = "/") -> str:
        """``ws://host:port/path`` for this server."""
        return f"ws://{hostport(self.host, self.port)}/{path.lstrip('/')}"


def wait_started(server: uvicorn.Server, alive: Callable[[], bool], timeout: float) -> bool:
    """Wait until ``server`` accepts connections (uvicorn's public ``started`` flag), while
    ``alive()`` (its thread or process still serving) and for at most ``timeout`` seconds.

    uvicorn has no startup callback but this flag, so it is read every 5 ms: a server that
    took a second to import its app is announced at most 5 ms late."""
    deadline = time.monotonic() + timeout
    while not server.started:
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.005)  # uvicorn sets a flag, nothing to wait on
    return True


class LiveServer(_Addresses, Managed):
    """Run an ASGI app under a real uvicorn in a background thread.

    >>> with LiveServer(app) as server:
    ...     url = server.ws_url("/ws/echo")

    In a notebook, call ``server = LiveServer(app).start()`` in one cell and
    ``server.stop()`` in a later one: the thread has its own event loop, so the
    kernel's running loop is never touched. ``sock``: serve this listening socket (once)
    instead of binding one on ``host:port``.

    uvicorn runs stock: ``Server.serve(sockets=[sock])``, ready once its public ``started``
    flag is set. ``stop()`` calls its public ``shutdown()`` at once, then cancels ``serve()``
    (as uvicorn's own test suite stops its servers): setting ``should_exit`` instead waits
    for uvicorn's main loop to look, every 0.1 s. Either way ``shutdown()`` pauses a fixed
    0.1 s, connections or not, and no setting skips it. Measured: a stop takes 0.10 s here,
    0.20 s through ``should_exit``, 1 ms when the kit subclassed ``Server`` to skip both.
    Accepted: tests/test_kit.py, lessons/03_manager and tests/test_hostile.py on 2 workers
    took 57 and 54 s with the subclass, 55 and 50 s now (interleaved runs; server processes
    now start 130 ms sooner, lessons.kit.forkserver).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        graceful_timeout: float = 2.0,
        log_level: str = "warning",
        sock: socket.socket | None = None,
        **config: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = sock.getsockname()[1] if sock else port
        self.graceful_timeout = graceful_timeout
        self.options = {
            "log_level": log_level,
            "log_config": None,
            "timeout_graceful_shutdown": max(1, round(graceful_timeout)),
            **SERVER_SETTINGS,
            **config,
        }
        self.error: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ended = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; return once the server accepts connections."""
        if self.running:
            raise RuntimeError("this server is already running")
        if self._sock is None:
            self._sock = bind_socket(self.host, self.port)
            self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, **self.options))
        self.error = None
        self._ended = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wslab-server:{self.port}", daemon=True
        )
        self._thread.start()
        track(self)
        started = False
        try:  # a stop signal (KeyboardInterrupt) may come while it starts: it stops then
            started = wait_started(self._server, self._thread.is_alive, scaled(timeout))
        finally:
            if not started:
                self.stop()
        if not started:
            within = "" if self.error else f" within {timeout}s"
            raise RuntimeError(f"the server did not start{within}") from self.error
        return self

    def wait(self) -> None:
        """Block until the server ends; a signal's handler may interrupt the wait. (Not a
        ``join()``: on Python 3.11 a join that a signal interrupts marks the thread ended.)"""
        self._ended.wait()

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            asyncio.run(self._serve(self._server, self._sock))
        except BaseException as exc:  # recorded for start() and stop() to report
            self.error = exc
        finally:
            self._ended.set()

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()  # first: stop() calls it once _stopping is set
        self._stopping = stopping = asyncio.Event()
        serving = asyncio.create_task(self._serve_until_done(server, sock))
        await asyncio.wait(
            [serving, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if serving.done():
            serving.result()  # its error, if it had one
            return
        if server.started:
            await server.shutdown(sockets=[sock])
            serving.cancel()
        else:  # still starting: it shuts down once started
            server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    @staticmethod
    async def _serve_until_done(server: uvicorn.Server, sock: socket.socket) -> None:
        """``server.serve()``, whose startup failure (``sys.exit(3)``: a SystemExit, which
        asyncio lets escape the loop and leaves unretrieved in its task, to be logged when
        that task is collected, in whatever test is running then) is a RuntimeError."""
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:
            raise RuntimeError(f"uvicorn could not start (exit status {exc.code})") from None

    def _call_soon(self, callback: Callable[[], object]) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: it is over
                self._loop.call_soon_threadsafe(callback)

    def _cancel_stragglers(self) -> None:
        """Cancel again every task of the server's loop already asked to stop and still
        waiting. Seen under load: a Redis client's read swallowed its cancellation and then
        waited forever for a reply, which held the app's shutdown (and the thread) open."""

        def cancel() -> None:
            for task in asyncio.all_tasks():
                if task.cancelling():
                    task.cancel()

        self._call_soon(cancel)

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down gracefully (open WebSockets are closed with 1012), bounded in time."""
        if self._server is not None and self._thread is not None:
            if self._stopping is None:  # not serving yet: uvicorn sees the flag once started
                self._server.should_exit = True
            else:
                self._call_soon(self._stopping.set)
            deadline = time.monotonic() + scaled(timeout)
            self._thread.join(STRAGGLER_SECONDS)
            while self._thread.is_alive() and time.monotonic() < deadline:
                self._cancel_stragglers()
                self._thread.join(STRAGGLER_SECONDS)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._cancel_stragglers()
                self._thread.join(scaled(timeout))
            if self._thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not stop")
        if self._sock is not None:
            self._sock.close()
        self._thread = self._server = self._sock = self._loop = self._stopping = None
        untrack(self)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LiveServer {self.http_url} {state}>"


class SubprocessServer(_Addresses, Managed):
    """Run an app file under uvicorn in its own process, on a socket bound here.

    ``target`` is ``path/to/app.py`` or ``path/to/app.py:attribute``. The process's
    output (uvicorn's log, access log included) is collected in ``lines``;
    ``wait_for_output`` waits for a line matching a pattern. ``stop()`` sends SIGTERM
    (uvicorn's graceful shutdown), ``kill()`` SIGKILL, ``pause()``/``resume()`` SIGSTOP and
    SIGCONT: a frozen server, as a blocked event loop or a dead host looks from outside.
    """

    def __init__(
        self,
        target: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        env: dict[str, str] | None = None,
        log_level: str = "info",
        graceful_timeout: float = 2.0,
        user_timeout: float | None = USER_TIMEOUT,
        **config: Any,
    ) -> None:
        path, _, attribute = str(target).partition(":")
        self.user_timeout = user_timeout
        self.path = Path(path).resolve()
        self.attribute = attribute or "app"
        self.host = host
        self.port = port
        self.env = env or {}
        self.options = {
            "log_level": log_level,
            "timeout_graceful_shutdown": max(1, round(graceful_timeout)),
            **config,
        }
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | ForkedProcess | None = None
        self._socket: socket.socket | None = None
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the server's process, once started."""
        return self.process.pid if self.process else None

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def bind(self) -> int:
        """Bind the listening socket now and return its port (``start()`` binds otherwise).

        Servers that must know each other's ports before they start bind first.
        """
        if self._socket is None:
            self._socket = bind_socket(self.host, self.port, user_timeout=self.user_timeout)
            self.port = self._socket.getsockname()[1]
        return self.port

    def start(self, timeout: float = 20.0) -> Self:
        """Start the process; return once its server accepts connections."""
        if self.running:
            raise RuntimeError("this server is already running")
        self.bind()
        sock, self._socket = self._socket, None
        assert sock is not None
        args = [f"{self.path}:{self.attribute}", json.dumps(self.options)]
        with sock:
            self.process = start_child(
                sock, args, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
            )
        track(self)
        self.lines = []
        self._reader = threading.Thread(
            target=self._read, name=f"wslab-output:{self.port}", daemon=True
        )
        self._reader.start()
        try:
            self.wait_for_output(re.escape(READY_LINE), timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"{self.path.name} did not start within {timeout}s; its output:\n{self.output}"
            ) from None
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_output(self, pattern: str, timeout: float = 10.0, start: int = 0) -> str:
        """The first output line from index ``start`` on that matches ``pattern``."""
        regex = re.compile(pattern)
        scanned = start

        def found() -> str | None:
            nonlocal scanned
            for line in self.lines[scanned:]:
                scanned += 1
                if regex.search(line):
                    return line
            if self._reader is None or not self._reader.is_alive():
                raise TimeoutError(f"the process ended before printing {pattern!r}")
            return None

        with self._changed:
            line = self._changed.wait_for(found, scaled(timeout))
        if line is None:
            raise TimeoutError(f"no output line matched {pattern!r} within {timeout}s")
        return line

    def _signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(sig)

    def pause(self, timeout: float = 5.0) -> None:
        """Freeze the process (SIGSTOP): its sockets stay open but nothing answers.

        Returns once each of its threads has stopped (Linux): the kernel stops them one by
        one, and the one serving ran on for a while under load (it answered, once)."""
        self._signal(signal.SIGSTOP)
        tasks = Path(f"/proc/{self.pid}/task")
        deadline = time.monotonic() + scaled(timeout)
        while self.running and tasks.is_dir() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # a thread that just ended
                states = [
                    (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    for task in tasks.iterdir()
                ]
                if all(state in "tT" for state in states):
                    return
            time.sleep(0.001)  # the kernel's state: nothing to wait on

    def resume(self) -> None:
        """Unfreeze a paused process (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """End the process abruptly (SIGKILL): clients see 1006, no close frame."""
        self._finish(signal.SIGKILL, 5.0)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit status.

        The server shuts down gracefully and then ends by the same signal, so a clean stop
        returns ``-signal.SIGTERM``.
        """
        return self._finish(signal.SIGTERM, timeout)

    def _finish(self, sig: signal.Signals, timeout: float) -> int | None:
        untrack(self)
        if self._socket is not None:  # bound, never started
            self._socket.close()
            self._socket = None
        if self.process is None:
            return None
        self._signal(signal.SIGCONT)  # a paused process must run to take the signal
        end_process(self.process, sig, timeout)
        if self._reader is not None:
            self._reader.join(scaled(5.0))
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SubprocessServer {self.path.name} {self.http_url} {state}>"


def start_together(servers: Sequence[LiveServer | SubprocessServer]) -> None:
    """Start every server side by side (a new process spends about a second importing
    FastAPI: started together, those seconds overlap); return once all accept connections.
    If one fails, every one is stopped and the first error raised."""
    with ThreadPoolExecutor(max(1, len(servers))) as pool:
        started = [pool.submit(server.start) for server in servers]
    problems = [error for future in started if (error := future.exception()) is not None]
    if problems:
        for server in servers:
            server.stop()
        raise problems[0]
