"""Deploy: a chat with rooms behind a proxy, over TLS, on many instances, resumable.

Every instance shares the rooms through a Redis stream per room (lesson 05's broker): a
message is stored with XADD under a time-ordered id, and every client says which id it saw
last when it (re)connects, so a client moved to another instance by a restart misses
nothing. A heartbeat keeps quiet connections alive through the proxy's idle timeout.

Settings come from the environment, like any deployed app:
BROKER_URL (Redis), INSTANCE (a name shown to clients), HEARTBEAT (seconds between the
server's pings; keep it below the proxy's idle timeout), HISTORY (messages kept per room),
QUEUE (messages a slow client may fall behind before it is closed with 1013 to resume).
"""

import asyncio
import contextlib
import json
import os
import re
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from redis.exceptions import RedisError

BROKER_URL = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
INSTANCE = os.environ.get("INSTANCE", f"{socket.gethostname()}:{os.getpid()}")
HEARTBEAT = float(os.environ.get("HEARTBEAT", "20"))
HISTORY = int(os.environ.get("HISTORY", "1000"))
QUEUE = int(os.environ.get("QUEUE", "256"))
ROOM_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

redis = aioredis.Redis.from_url(BROKER_URL, decode_responses=True)
listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
readers: dict[str, asyncio.Task[None]] = {}


def key(room: str) -> str:
    return f"room:{room}"


def as_tuple(stream_id: str) -> tuple[int, int]:
    milliseconds, sequence = stream_id.split("-")
    return int(milliseconds), int(sequence)


def event(stream_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"type": "message", "id": stream_id, **fields}


async def newest_id(room: str) -> str:
    newest = await redis.xrevrange(key(room), count=1)
    return newest[0][0] if newest else "0-0"


async def read_room(room: str, last: str) -> None:
    """The one reader of a room in this process: new entries to every local listener."""
    while True:
        try:
            reply = await redis.xread({key(room): last}, block=1000)
        except (RedisError, OSError):  # Redis restarting: ask again from the same id
            await asyncio.sleep(1)
            continue
        for _, entries in reply:
            for stream_id, fields in entries:
                last = stream_id
                for queue in list(listeners[room]):
                    try:
                        queue.put_nowait(event(stream_id, fields))
                    except asyncio.QueueFull:  # a slow client: closed, it resumes later
                        listeners[room].discard(queue)


async def heartbeat(websocket: WebSocket) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT)
        await websocket.send_json({"type": "ping"})


async def join(room: str, last: str | None) -> tuple[asyncio.Queue[dict[str, Any]], str]:
    """Listen to ``room`` from now on; returns the queue and the id the client has seen."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
    listeners[room].add(queue)
    try:
        if room not in readers:
            start = await newest_id(room)
            if room not in readers:  # another client may have started it meanwhile
                readers[room] = asyncio.create_task(read_room(room, start))
        return queue, last or await newest_id(room)
    except BaseException:
        listeners[room].discard(queue)
        raise


async def forward(
    websocket: WebSocket, room: str, queue: asyncio.Queue[dict[str, Any]], last: str
) -> None:
    """Send what the client missed since ``last``, then every new message, in order."""
    seen = as_tuple(last)
    for stream_id, fields in await redis.xrange(key(room), f"({last}", "+"):
        await websocket.send_json(event(stream_id, fields))
        seen = as_tuple(stream_id)
    while queue in listeners[room] or not queue.empty():
        message = await queue.get()
        if as_tuple(message["id"]) > seen:
            seen = as_tuple(message["id"])
            await websocket.send_json(message)
    await websocket.close(1013, "too far behind: reconnect and resume")


async def receive(websocket: WebSocket, room: str) -> None:
    while True:
        try:
            message = json.loads(await websocket.receive_text())
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await websocket.send_json({"type": "error", "error": 'send {"text": ..., "cid": ...}'})
            continue
        text, cid = str(message.get("text", ""))[:1000], str(message.get("cid", ""))[:64]
        fields = {"text": text, "cid": cid, "instance": INSTANCE}
        try:
            stream_id = await redis.xadd(key(room), fields, maxlen=HISTORY, approximate=True)
        except (RedisError, OSError):  # not acknowledged: the client sends it again
            await websocket.send_json({"type": "error", "error": "broker down: not stored"})
            continue
        await websocket.send_json({"type": "ack", "cid": cid, "id": stream_id})


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    while running := [task for task in readers.values() if not task.done()]:
        for task in running:  # redis-py can swallow a cancellation: ask until they end
            task.cancel()
        await asyncio.wait(running, timeout=0.1)
    readers.clear()
    await redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("index.html"))


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, last: str | None = None) -> None:
    if not ROOM_NAME.match(room) or (last is not None and not STREAM_ID.match(last)):
        await websocket.close(1008, "bad room name or resume id")
        return
    await websocket.accept()
    try:
        queue, last = await join(room, last)
    except (RedisError, OSError):
        await websocket.close(1013, "broker unavailable: try again later")
        return
    client = websocket.client.host if websocket.client else "unknown"
    hello = {"type": "welcome", "instance": INSTANCE, "client": client, "last": last}
    await websocket.send_json(hello)
    tasks = [
        asyncio.create_task(receive(websocket, room)),
        asyncio.create_task(forward(websocket, room, queue, last)),
        asyncio.create_task(heartbeat(websocket)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        failed = [t.exception() for t in done if t.exception() is not None]
        if any(not isinstance(exc, WebSocketDisconnect) for exc in failed):
            with contextlib.suppress(Exception):
                await websocket.close(1011, "server error")
    finally:
        listeners[room].discard(queue)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
