"""One knob for every wait in the kit and the tests, and the one polling wait there is.

On a slow or loaded machine, ``WSLAB_TIMEOUT_SCALE=3`` triples every timeout without
changing what any test asserts.
"""

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Any


def scaled(seconds: float) -> float:
    """``seconds`` multiplied by ``WSLAB_TIMEOUT_SCALE`` (default 1)."""
    return seconds * float(os.environ.get("WSLAB_TIMEOUT_SCALE", "1"))


async def eventually(
    condition: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Wait until ``condition()`` (plain or async) returns something truthy; return it.

    Only for state that offers nothing to wait on (a server's counters, Redis's subscriber
    count): it is polled every ``interval`` seconds, with a deadline. Wherever there is a
    message, a log line or an event, wait on that instead.
    """
    async with asyncio.timeout(scaled(timeout)):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)
