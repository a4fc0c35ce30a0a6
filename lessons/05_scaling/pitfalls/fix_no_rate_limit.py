"""P32, fixed: one client flooding the room."""

import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

RATE, BURST = 20.0, 40  # a token bucket: messages a second on average, and at once
app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    tokens, stamp = float(BURST), time.monotonic()
    try:
        while True:
            text = await websocket.receive_text()
            now = time.monotonic()  # refill, then take one token per message
            tokens, stamp = min(BURST, tokens + (now - stamp) * RATE) - 1, now
            if tokens < 0:
                await websocket.close(1008, f"rate limit: {RATE:g} messages/s")
                return
            for client in list(clients):
                try:
                    await client.send_text(text)
                except (WebSocketDisconnect, RuntimeError):
                    pass  # that client is leaving: its own handler removes it
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
