"""What arrived, within a window: for chat cells a learner changes freely.

A fixed sequence of ``receive()`` calls breaks as soon as a learner sends one more message
(the next ``receive()`` gets the wrong reply, the last one times out). ``heard`` instead
listens to every client for a short window and prints what each one received, whatever
that was: add a send, remove one, add a client, and the cell still runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient
from lessons.kit.timing import scaled


async def _drain(client: LiveClient, within: float) -> list[Any]:
    received: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                data = await client.connection.recv()
        except (TimeoutError, ConnectionClosed):
            break
        try:
            received.append(json.loads(data))
        except (TypeError, ValueError):
            received.append(data)
    return received


async def heard(*clients: LiveClient, within: float = 0.1) -> dict[str, list[Any]]:
    """Listen to every client at once for ``within`` seconds (scaled by
    ``WSLAB_TIMEOUT_SCALE``); print and return what each received (JSON decoded where it is
    JSON), by client name."""
    results = await asyncio.gather(*(_drain(client, scaled(within)) for client in clients))
    found = {client.name: received for client, received in zip(clients, results, strict=True)}
    for name, received in found.items():
        print(f"{name} heard:", *(received or ["nothing"]), sep="\n    ")
    return found
