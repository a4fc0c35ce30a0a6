"""P06, broken: ``except Exception: await websocket.close()`` on a client that already left.

The ticker notices the client left when a send fails (``WebSocketDisconnect``, code 1006).
Closing then raises ``WebSocketDisconnected`` (a ``RuntimeError``): 'Cannot call "send"
once a close message has been sent'. uvicorn logs ``Exception in ASGI application``.
"""

import asyncio

from fastapi import FastAPI, WebSocket

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
    except Exception:
        await websocket.close()
