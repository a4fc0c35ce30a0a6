"""P34, fixed: a WebSocket endpoint in a module that postpones its annotations."""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def hello(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()
