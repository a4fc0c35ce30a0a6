"""P26, fixed: a client that vanishes without a close frame (a half-open peer)."""

import asyncio
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

HEARTBEAT = float(os.environ.get("HEARTBEAT", "15"))  # quiet this long: ping; as long again: gone
app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    print(f"joined: {len(clients)} clients", flush=True)
    try:
        while True:
            try:
                await asyncio.wait_for(websocket.receive_text(), HEARTBEAT)
            except TimeoutError:  # quiet: ping it; nothing back within HEARTBEAT, and it is gone
                await websocket.send_json({"type": "ping"})
                await asyncio.wait_for(websocket.receive_text(), HEARTBEAT)
    except (WebSocketDisconnect, TimeoutError):
        pass
    finally:
        clients.discard(websocket)
        print(f"left: {len(clients)} clients", flush=True)
