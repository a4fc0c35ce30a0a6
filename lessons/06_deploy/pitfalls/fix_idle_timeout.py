"""P41, fixed: a quiet WebSocket behind a proxy that cuts idle connections."""

import asyncio
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

HEARTBEAT = float(os.environ.get("HEARTBEAT", "20"))  # seconds: below the proxy's timeout
app = FastAPI()


async def heartbeat(websocket: WebSocket) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT)
        await websocket.send_json({"type": "ping"})


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    pings = asyncio.create_task(heartbeat(websocket))
    try:
        while True:
            await websocket.send_text(f"echo: {await websocket.receive_text()}")
    except WebSocketDisconnect:
        pass
    finally:
        pings.cancel()
