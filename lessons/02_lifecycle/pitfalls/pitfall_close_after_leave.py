"""P06, broken: a ticker closes the socket in its error handler after the client left."""

import asyncio

from fastapi import FastAPI, WebSocket

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
    except Exception:
        await websocket.close()
