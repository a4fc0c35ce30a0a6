"""P38, fixed: a client that stops reading, then closes, with messages queued."""

import asyncio

from websockets.asyncio.client import ClientConnection


async def read_then_leave(websocket: ClientConnection, count: int) -> tuple[list, int | None]:
    """Read ``count`` messages from ``websocket``, then close: return them and the close code."""
    messages = [await websocket.recv() for _ in range(count)]
    closing = asyncio.create_task(websocket.close())
    async for _ in websocket:  # read what is queued, so that the close frame arrives
        pass
    await closing
    return messages, websocket.protocol.close_code
