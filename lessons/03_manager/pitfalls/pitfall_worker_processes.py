"""P18, broken: an in-memory manager under several worker processes."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

clients: set[WebSocket] = set()
bus: asyncio.Queue[str] = asyncio.Queue()  # every message this process hears passes here


async def publish(message: str) -> None:
    await bus.put(message)


async def deliver(message: str) -> None:
    for client in list(clients):
        with suppress(WebSocketDisconnect):
            await client.send_text(message)


async def relay() -> None:
    while True:
        await deliver(await bus.get())


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(relay())
    yield
    task.cancel()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to process {os.getpid()}")
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await publish(f"{user}: {text}")
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
