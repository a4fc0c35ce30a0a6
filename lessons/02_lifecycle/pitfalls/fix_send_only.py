"""P08, fixed: a feed that pushes what POST /notify queues, to a client that never talks."""

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


async def write(websocket: WebSocket, outbox: asyncio.Queue[str]) -> None:
    while True:
        await websocket.send_text(await outbox.get())


@app.websocket("/ws/{client_id}")
async def feed(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    CLIENTS[client_id] = outbox = asyncio.Queue()
    writer = asyncio.create_task(write(websocket, outbox))  # pushes while this loop reads
    try:
        while True:
            await websocket.receive_text()  # nothing to read: this hears the client leave
    except WebSocketDisconnect:
        pass
    finally:
        writer.cancel()
        del CLIENTS[client_id]
