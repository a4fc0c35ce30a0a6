"""P28, broken: one Redis pub/sub connection per WebSocket (seed 003's subscribe_to_room).

N clients hold N Redis connections. redis-py's async pool holds at most 100 by default:
the 101st subscriber raises ``MaxConnectionsError``, and so does every publish while the
pool is full, so past 100 clients nothing is delivered at all.
"""

import asyncio
import os

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

CHANNEL = "room"
redis = aioredis.Redis.from_url(os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"))
app = FastAPI()


async def subscribe_to_room(websocket: WebSocket) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        async for message in pubsub.listen():
            if message["type"] == "message":
                await websocket.send_text(message["data"].decode())
    finally:
        await pubsub.aclose()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    listener = asyncio.create_task(subscribe_to_room(websocket))
    try:
        while True:
            await redis.publish(CHANNEL, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        listener.cancel()
