"""P29, fixed: messages published while Redis restarts."""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
        try:
            await websocket.send_json(event)
        except (WebSocketDisconnect, RuntimeError):
            pass  # that client is leaving: its own handler removes it


async def publish(text: str) -> None:
    await redis.xadd(KEY, {"event": json.dumps({"type": "message", "text": text})})


async def subscriber() -> None:
    down, last = False, None
    while True:
        try:
            last = last or (await redis.xrevrange(KEY, count=1) or [("0-0", {})])[0][0]
            ready.set()
            if down:
                down = False
                await announce({"type": "broker", "status": "up"})
            while True:
                for _, entries in await redis.xread({KEY: last}, block=1000):
                    for last, fields in entries:  # noqa: B007 (last: where to go on after an outage)
                        await announce(json.loads(fields["event"]))
        except (RedisError, OSError):
            ready.set()
            if not down:
                down = True
                await announce({"type": "broker", "status": "down"})
            await asyncio.sleep(RETRY_DELAY)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    listener = asyncio.create_task(subscriber())
    await ready.wait()
    yield
    listener.cancel()
    await asyncio.wait([listener])
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
