"""P38, fixed: a client that stops reading, then closes, with messages queued."""

import asyncio
import sys

from websockets.asyncio.client import connect


async def read_then_leave(url: str, count: int, close_timeout: float = 10) -> tuple[list, int]:
    """Read ``count`` messages from ``url``, then close: return them and the close code."""
    async with connect(url, close_timeout=close_timeout) as websocket:
        messages = [await websocket.recv() for _ in range(count)]
        closing = asyncio.create_task(websocket.close())
        async for _ in websocket:  # read what is queued, so that the close frame arrives
            pass
        await closing
    return messages, websocket.protocol.close_code


if __name__ == "__main__":
    print(asyncio.run(read_then_leave(sys.argv[1], int(sys.argv[2]))))
