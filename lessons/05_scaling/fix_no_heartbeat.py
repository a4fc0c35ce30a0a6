"""P26, fixed: an application heartbeat finds a half-open peer within a bounded window.

Every ``HEARTBEAT_INTERVAL`` seconds the server sends ``{"type": "ping"}``; any message
from the client (its ``{"type": "pong"}`` included) proves it alive. A client silent for
interval + ``HEARTBEAT_TIMEOUT`` is closed (with a deadline: it will not read our close
frame) and removed. Browsers answer protocol pings but cannot send them or see them, so an
application ping is also how a page notices a dead server.
"""

import asyncio
import contextlib
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

INTERVAL = float(os.environ.get("HEARTBEAT_INTERVAL", "15"))
TIMEOUT = float(os.environ.get("HEARTBEAT_TIMEOUT", "10"))

app = FastAPI()
clients: set[WebSocket] = set()


async def pinger(websocket: WebSocket) -> None:
    while True:
        await asyncio.sleep(INTERVAL)
        await websocket.send_json({"type": "ping"})


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    print(f"joined: {len(clients)} clients", flush=True)
    heartbeat = asyncio.create_task(pinger(websocket))
    try:
        while True:
            async with asyncio.timeout(INTERVAL + TIMEOUT):
                await websocket.receive_text()
    except TimeoutError:
        print(f"heartbeat timeout: silent for {INTERVAL + TIMEOUT:g}s", flush=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await websocket.close(1011, "heartbeat timeout")
    except WebSocketDisconnect:
        pass
    finally:
        heartbeat.cancel()
        clients.discard(websocket)
        print(f"left: {len(clients)} clients", flush=True)
