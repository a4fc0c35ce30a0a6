"""P31, fixed: the per-client queue of a client that stopped reading."""

import asyncio
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

QUEUE_SIZE = 100  # messages a client may have waiting; more: a slow consumer
app = FastAPI()
clients: dict[WebSocket, tuple[asyncio.Queue[str], asyncio.Task[None]]] = {}


async def sender(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
    while True:
        await websocket.send_text(await queue.get())


async def reader(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


def offer(websocket: WebSocket, text: str) -> None:
    queue, writer = clients[websocket]
    try:
        queue.put_nowait(text)
    except asyncio.QueueFull:  # a slow consumer: stop feeding it, and let it go
        clients.pop(websocket)
        writer.cancel()


@app.post("/publish")
async def publish(count: int = 1, size: int = 100) -> dict[str, Any]:
    """Publish ``count`` messages of ``size`` bytes, as a busy room would."""
    text = "x" * size
    for _ in range(count):
        for websocket in list(clients):
            offer(websocket, text)
        await asyncio.sleep(0)  # let the senders run between two messages
    return await stats()


@app.get("/stats")
async def stats() -> dict[str, Any]:
    queued = [queue.qsize() for queue, _ in clients.values()]
    return {"clients": len(clients), "queued": max(queued, default=0)}


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
    writer = asyncio.create_task(sender(websocket, queue))
    clients[websocket] = queue, writer
    listener = asyncio.create_task(reader(websocket))
    await asyncio.wait([listener, writer], return_when=asyncio.FIRST_COMPLETED)
    listener.cancel()
    writer.cancel()
    clients.pop(websocket, None)
