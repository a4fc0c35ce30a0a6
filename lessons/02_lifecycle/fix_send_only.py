"""P08, fixed: a reader task and a writer task, cancelled together when either ends.

The reader notices the disconnect at once (and could handle client messages); the writer
pushes from the outbox. ``asyncio.wait(..., FIRST_COMPLETED)`` then cancels the other.
"""

import asyncio

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect

app = FastAPI()
CLIENTS: dict[str, asyncio.Queue[str]] = {}


@app.get("/clients")
async def clients() -> list[str]:
    return sorted(CLIENTS)


@app.post("/notify/{client_id}")
async def notify(client_id: str, text: str) -> dict:
    if client_id not in CLIENTS:
        raise HTTPException(404, f"client {client_id!r} is not connected")
    CLIENTS[client_id].put_nowait(text)
    return {"queued_for": client_id}


async def read(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


async def write(websocket: WebSocket, outbox: asyncio.Queue[str]) -> None:
    try:
        while True:
            await websocket.send_text(await outbox.get())
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/{client_id}")
async def feed(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    outbox: asyncio.Queue[str] = asyncio.Queue()
    CLIENTS[client_id] = outbox
    tasks = {asyncio.create_task(read(websocket)), asyncio.create_task(write(websocket, outbox))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        del CLIENTS[client_id]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)  # let both finish; never raises their exceptions
