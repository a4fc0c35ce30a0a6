"""P06, fixed: a ticker closes the socket in its error handler after the client left."""

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

app = FastAPI()


@app.websocket("/ws/ticker")
async def ticker(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            count = int(await websocket.receive_text())  # how many ticks to send
            for tick in range(1, count + 1):
                await websocket.send_json({"tick": tick})
                await asyncio.sleep(0.02)
    except WebSocketDisconnect:
        return  # the client is gone: there is nothing left to close
    except Exception:
        if websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(1011, "internal error")
        raise
