"""P34, broken: a type hint FastAPI cannot resolve turns ``websocket`` into a query parameter.

With ``from __future__ import annotations``, FastAPI resolves hints at runtime; ``WebSocket``
is imported only for the type checker, so the hint is an unknown name. FastAPI then treats
``websocket`` as a required query parameter: every handshake fails with HTTP 403, and
nothing is logged at warning level.
"""

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
