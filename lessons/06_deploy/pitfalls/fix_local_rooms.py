"""P44, fixed: rooms kept in each instance's memory behind a round-robin proxy."""

import asyncio
import contextlib
import os
from collections import defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

BROKER_URL = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
INSTANCE = os.environ.get("INSTANCE", str(os.getpid()))
redis = aioredis.Redis.from_url(BROKER_URL, decode_responses=True)
rooms: dict[str, set[WebSocket]] = defaultdict(set)


async def deliver(message: dict[str, str]) -> None:
    """Send ``message["data"]`` to this process's clients in room ``message["channel"]``."""
    for websocket in list(rooms[message["channel"]]):
        with contextlib.suppress(Exception):
            await websocket.send_text(message["data"])


async def publish(room: str, text: str) -> None:
    await redis.publish(room, text)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with redis.pubsub() as pubsub:
        await pubsub.psubscribe(**{"*": deliver})  # every room: to this process's clients
        relay = asyncio.create_task(pubsub.run())
        yield
        relay.cancel()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to {room} on instance {INSTANCE}")
    rooms[room].add(websocket)
    try:
        while True:
            await publish(room, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        rooms[room].discard(websocket)
