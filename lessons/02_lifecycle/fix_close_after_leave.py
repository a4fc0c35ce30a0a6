"""P06, fixed: a disconnected client needs no close; close only what is still open.

``WebSocketDisconnect`` means the connection is over: return. For another error, close
with 1011 only while the application side of the socket is still connected.
"""

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

app = FastAPI()


@app.websocket("/ws/ticker")
async def ticker(websocket: WebSocket) -> None:
    await websocket.accept()
    tick = 0
    try:
        while True:
            tick += 1
            await websocket.send_json({"tick": tick})
            await asyncio.sleep(0.05)
    except WebSocketDisconnect:
        return  # the client is gone: there is nothing left to close
    except Exception:
        if websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(1011, "internal error")
        raise
