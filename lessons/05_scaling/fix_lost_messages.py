"""P29, fixed: a Redis Stream read from the last id seen: an outage loses nothing.

XADD stores each message under a time-ordered id; the one reader per process asks for
everything after the last id it delivered (XREAD). After a Redis restart it asks again
from that id and gets every message published meanwhile, even on an empty, restarted
Redis, because new ids are later in time. Clients can resume the same way (see app.py).
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

KEY = "room"
RETRY_DELAY = float(os.environ.get("RETRY_DELAY", "1.0"))
redis = aioredis.Redis.from_url(
    os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"),
    decode_responses=True,
    retry=Retry(NoBackoff(), 1),  # fail fast: the loop below reconnects and says so
)
clients: set[WebSocket] = set()
ready = asyncio.Event()  # set once subscribed (or failed): the app then accepts clients


async def announce(event: dict[str, Any]) -> None:
    for websocket in list(clients):
        with contextlib.suppress(Exception):
            await websocket.send_json(event)


async def publish(text: str) -> None:
    await redis.xadd(KEY, {"text": text})


async def subscriber() -> None:
    down, last = False, None
    while True:
        try:
            if last is None:
                newest = await redis.xrevrange(KEY, count=1)
                last = newest[0][0] if newest else "0-0"
                ready.set()
            while True:
                reply = await redis.xread({KEY: last}, block=1000)
                if down:
                    down = False
                    await announce({"type": "broker", "status": "up"})
                for _, entries in reply:
                    for event_id, fields in entries:
                        last = event_id  # where to resume after an outage
                        await announce({"type": "message", "text": fields["text"]})
        except (RedisError, OSError):
            ready.set()
            if not down:
                down = True
                await announce({"type": "broker", "status": "down"})
            await asyncio.sleep(RETRY_DELAY)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    listener = asyncio.create_task(subscriber())
    await ready.wait()
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
            text = await websocket.receive_text()
            try:
                await publish(text)
            except (RedisError, OSError):
                await websocket.send_json({"type": "error", "error": "broker down: not sent"})
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
