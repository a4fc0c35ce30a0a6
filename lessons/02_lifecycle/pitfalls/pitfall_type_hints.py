"""P34, broken: a WebSocket endpoint in a module that postpones its annotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from fastapi import WebSocket

app = FastAPI()


@app.websocket("/ws")
async def hello(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()
