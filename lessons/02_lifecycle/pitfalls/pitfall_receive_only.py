"""P08, broken: an echo handler that should also push what POST /notify queues for it."""

import asyncio

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect

app = FastAPI()
CLIENTS: dict[str, asyncio.Queue[str]] = {}  # connected client id -> its outbox


@app.post("/notify/{client_id}")
async def notify(client_id: str, text: str) -> dict:
    if client_id not in CLIENTS:
        raise HTTPException(404, f"client {client_id!r} is not connected")
    CLIENTS[client_id].put_nowait(text)
    return {"queued_for": client_id}


@app.websocket("/ws/{client_id}")
async def feed(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    CLIENTS[client_id] = outbox = asyncio.Queue()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"echo: {text}")
            while not outbox.empty():  # what was pushed since the last message
                await websocket.send_text(outbox.get_nowait())
    except WebSocketDisconnect:
        pass
    finally:
        del CLIENTS[client_id]
