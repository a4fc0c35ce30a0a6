"""P28, fixed: Redis pub/sub subscriptions for N WebSocket clients."""

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

CHANNEL = "room"
clients: set[WebSocket] = set()
redis = aioredis.Redis.from_url(os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"))


async def forward(websockets: Iterable[WebSocket]) -> None:
    """Subscribe to the room, and send every message published there to ``websockets``."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        async for message in pubsub.listen():
            if message["type"] == "message":
                for websocket in list(websockets):
                    try:
                        await websocket.send_text(message["data"].decode())
                    except (WebSocketDisconnect, RuntimeError):
                        pass  # that client is leaving: its own handler removes it


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    listener = asyncio.create_task(forward(clients))  # ONE subscriber for this process
    yield
    listener.cancel()
    await redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            await redis.publish(CHANNEL, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
