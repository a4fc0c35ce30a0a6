"""P30, broken: many clients reconnecting after the same restart."""

import asyncio
import os
from collections.abc import Callable

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

BASE = float(os.environ.get("BACKOFF_BASE", "1.0"))
CAP = 30.0


def delay(attempt: int) -> float:
    return min(CAP, BASE * 2**attempt)


async def stay_connected(url: str, on_attempt: Callable[[], None]) -> None:
    """Connect to ``url`` and read until closed, then retry after ``delay``: until cancelled."""
    attempt = 0
    while True:
        on_attempt()
        try:
            async with connect(url) as websocket:
                attempt = 0  # reset on success
                async for _ in websocket:
                    pass
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            pass
        await asyncio.sleep(delay(attempt))
        attempt += 1
