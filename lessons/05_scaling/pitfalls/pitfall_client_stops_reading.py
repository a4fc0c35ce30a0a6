"""P38, broken: a client that stops reading, then closes, with messages queued."""

from websockets.asyncio.client import ClientConnection


async def read_then_leave(websocket: ClientConnection, count: int) -> tuple[list, int | None]:
    """Read ``count`` messages from ``websocket``, then close: return them and the close code."""
    messages = [await websocket.recv() for _ in range(count)]
    await websocket.close()
    return messages, websocket.protocol.close_code
