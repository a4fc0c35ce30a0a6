"""P18, fixed: every process publishes to Redis and fans out what Redis delivers.

A message goes to a Redis channel, not straight to the local clients. Each process holds
one subscription (opened in the lifespan, before it serves anyone) and delivers whatever
arrives to its own clients, so every client hears every message whatever its worker.
Lesson 05 builds this out: reconnects, lost messages, backpressure.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL = "wslab03:chat"
clients: set[WebSocket] = set()
redis = Redis.from_url(REDIS_URL, decode_responses=True)


async def deliver(message: str) -> None:
    for client in list(clients):
        with suppress(WebSocketDisconnect):
            await client.send_text(message)


async def relay(pubsub: PubSub) -> None:
    async for message in pubsub.listen():
        if message["type"] == "message":
            await deliver(message["data"])


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        task = asyncio.create_task(relay(pubsub))
        yield
        task.cancel()
        await asyncio.wait([task])
    await redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to process {os.getpid()}")
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await redis.publish(CHANNEL, f"{user}: {text}")
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
