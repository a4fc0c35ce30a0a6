"""P18, broken: an in-memory manager under several worker processes.

``uvicorn --workers 2`` runs two processes, each with its own ``clients`` set. A message
reaches only the clients connected to the process that received it; the others, on the
other worker, never see it. The welcome message names the process, so you can tell.
"""

import os
from contextlib import suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


async def deliver(message: str) -> None:
    for client in list(clients):
        with suppress(WebSocketDisconnect):
            await client.send_text(message)


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to process {os.getpid()}")
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await deliver(f"{user}: {text}")
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
