"""P18, fixed: an in-memory manager under several worker processes."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis

clients: set[WebSocket] = set()
redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


async def publish(message: str) -> None:
    await redis.publish("chat", message)  # to every process, this one included


async def deliver(message: str) -> None:
    for client in list(clients):
        with suppress(WebSocketDisconnect):
            await client.send_text(message)


async def relay() -> None:
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe("chat")
        async for message in pubsub.listen():
            await deliver(message["data"].decode())


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
