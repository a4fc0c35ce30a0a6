"""What app.py enforces around each client, beside it: a rate limit (a token bucket, P32),
and a close that cannot hang: bounded, then a reset for a peer that no longer reads (P36) or
answers (P37). ASGI has no "abort": ``KeepTransport`` keeps uvicorn's transport at hand."""

import asyncio
import socket
import struct
import time

from fastapi import WebSocket, WebSocketDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send


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


class KeepTransport:
    """With uvicorn, ``send`` is a method of the connection's protocol object, which holds the
    transport: keep it in the scope, so that ``close`` can reset the connection (with another
    server it is None, and the bounded close is all there is)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope["transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)


async def close(websocket: WebSocket, code: int, reason: str, timeout: float, reset: bool) -> None:
    """A close frame, waited for at most ``timeout`` seconds; then, if ``reset``, a reset."""
    try:
        async with asyncio.timeout(timeout):
            await websocket.close(code, reason)
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        pass  # the close frame could not be written: the peer stopped reading
    transport = websocket.scope.get("transport")
    if reset and transport is not None:
        sock = transport.get_extra_info("socket")
        try:  # linger 0: closing resets the connection and drops what is still unsent
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            return  # already closed (and asyncio's abort() raises on some closed connections)
        transport.abort()
