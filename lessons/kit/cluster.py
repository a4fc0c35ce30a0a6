"""Several instances of one app sharing a Redis: what ``wslab serve 05 --instances N`` runs.

Every instance gets ``BROKER_URL`` pointing at the Redis, an ``INSTANCE`` name (its port),
so the page shows which process a browser is talking to, and ``PEERS``, every instance's
port, so that a page whose instance stops moves to the next one.
"""

from __future__ import annotations

from pathlib import Path

from lessons.kit.server import SubprocessServer

MAX_INSTANCES = 16


def bind_peers(servers: list[SubprocessServer]) -> list[SubprocessServer]:
    """Bind every server's port, then give each one all of them as ``PEERS``.

    Lesson 05's welcome message passes them on, so that a page whose instance stops moves
    to the next one. Returns ``servers``, not started yet; if a port cannot be bound, none
    stays bound.
    """
    try:
        peers = ",".join(str(server.bind()) for server in servers)
    except OSError:  # a port taken: the ones bound already are let go
        for server in servers:
            server.stop()
        raise
    for server in servers:
        server.env["PEERS"] = peers
    return servers


def cluster(
    app_path: str | Path,
    broker_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    instances: int = 2,
    **options: object,
) -> list[SubprocessServer]:
    """``instances`` servers of ``app_path`` on ``port``, ``port + 1``, … (free ports if 0),
    bound and told about each other and the broker, not started yet."""
    if not 1 <= instances <= MAX_INSTANCES:
        raise ValueError(f"instances must be between 1 and {MAX_INSTANCES}, not {instances}")
    servers = [
        SubprocessServer(app_path, host, port + n if port else 0, **options)
        for n in range(instances)
    ]
    for server in bind_peers(servers):
        server.env.update(BROKER_URL=broker_url, INSTANCE=str(server.port))
    return servers
