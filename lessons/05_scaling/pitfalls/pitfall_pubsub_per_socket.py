"""P28, broken: Redis pub/sub subscriptions for N WebSocket clients."""

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

CHANNEL = "room"
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
    yield
    await redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    listener = asyncio.create_task(forward([websocket]))  # a subscriber for this client
    try:
        while True:
            await redis.publish(CHANNEL, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        listener.cancel()
