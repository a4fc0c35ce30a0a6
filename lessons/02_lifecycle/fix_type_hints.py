"""P34, fixed: import what FastAPI must read at runtime, outside ``if TYPE_CHECKING:``.

FastAPI reads the annotations of endpoints to decide what to inject: ``WebSocket`` (and
every parameter type) must be importable when the app starts.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def hello(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()
