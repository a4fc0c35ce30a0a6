"""What app.py enforces around each client, beside it: a rate limit (a token bucket, P32),
and a close that cannot hang, for a peer that no longer reads (P36) or answers (P37)."""

import asyncio
import time

from fastapi import WebSocket, WebSocketDisconnect


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; each message takes one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity, self.tokens = rate, burst, float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def close(websocket: WebSocket, code: int, reason: str, timeout: float) -> None:
    """A close frame, given at most ``timeout`` seconds to get out, and no wait for an answer
    from a peer that is silent (1011): uvicorn closes the connection when the handler returns.

    A close frame cannot get out past the backlog of a peer that stopped reading (P36): the
    kernel drops that connection once its data stays unacknowledged ``TCP_USER_TIMEOUT``
    (a socket option of the listening socket: ``wslab serve`` sets it; ASGI cannot)."""
    if code == 1011:
        return  # P37: no answer will come, so send nothing to wait for
    try:
        async with asyncio.timeout(timeout):
            await websocket.close(code, reason)
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        pass  # the close frame could not be written: the peer stopped reading
