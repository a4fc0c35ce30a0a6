"""P08, broken: a send-only loop never notices that the client left.

The handler waits on its outbox and never reads, so it never sees the disconnect: the
client stays listed in ``CLIENTS`` and ``POST /notify`` answers 200 for a client that is
gone. Only the next failed send ends it. (A receive-only loop has the opposite problem:
it cannot push while it waits for the client.)
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


@app.websocket("/ws/{client_id}")
async def feed(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    outbox: asyncio.Queue[str] = asyncio.Queue()
    CLIENTS[client_id] = outbox
    try:
        while True:
            await websocket.send_text(await outbox.get())
    except WebSocketDisconnect:
        pass
    finally:
        del CLIENTS[client_id]
