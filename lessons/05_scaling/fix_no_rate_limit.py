"""P32, fixed: a token bucket per connection; a client over its rate is closed with 1008.

Each connection gets ``RATE`` tokens per second, at most ``BURST`` saved up; a message
costs one. Normal bursts pass; a flood empties the bucket and the flooder is closed with
1008 (policy violation), so the room hears at most ``BURST`` of its messages.
"""

import contextlib
import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

RATE, BURST = 20.0, 40
app = FastAPI()
clients: set[WebSocket] = set()


class TokenBucket:
    """``rate`` messages per second on average, ``burst`` at once."""

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


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    bucket = TokenBucket(RATE, BURST)
    try:
        while True:
            text = await websocket.receive_text()
            if not bucket.take():
                await websocket.close(1008, f"rate limit: {RATE:g} messages/s")
                return
            for client in list(clients):
                with contextlib.suppress(Exception):
                    await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
