"""P37, broken: a peer that stays silent past the heartbeat deadline."""

import asyncio
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

SILENCE = float(os.environ.get("SILENCE", "25"))  # a live client sends at least this often

app = FastAPI()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    print("joined", flush=True)
    try:
        while True:
            async with asyncio.timeout(SILENCE):
                await websocket.receive_text()  # a message, or a pong to the server's ping
    except TimeoutError:
        print(f"silent for {SILENCE:g}s: gone", flush=True)
        await websocket.close(1011, "heartbeat timeout")  # uvicorn waits 10 s for the answer
    except WebSocketDisconnect:
        pass
