"""P28, fixed: ONE Redis subscriber per process, fanning out to its local WebSockets.

However many clients a process serves, it holds one pub/sub connection (plus the pool's
connections for publishing). The subscriber is owned by the lifespan: started once,
cancelled at shutdown.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

CHANNEL = "room"
redis = aioredis.Redis.from_url(os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"))
clients: set[WebSocket] = set()


async def subscribe_to_room() -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        async for message in pubsub.listen():
            if message["type"] == "message":
                text = message["data"].decode()
                for websocket in list(clients):
                    with contextlib.suppress(Exception):
                        await websocket.send_text(text)
    finally:
        await pubsub.aclose()


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    listener = asyncio.create_task(subscribe_to_room())
    yield
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
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
