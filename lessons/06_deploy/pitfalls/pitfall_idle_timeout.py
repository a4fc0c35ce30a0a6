"""P41, broken: a quiet WebSocket behind a proxy that cuts idle connections."""

import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

HEARTBEAT = float(os.environ.get("HEARTBEAT", "20"))  # seconds: below the proxy's timeout
app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(f"echo: {await websocket.receive_text()}")
    except WebSocketDisconnect:
        pass
