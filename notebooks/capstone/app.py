"""Capstone skeleton: a live task board, authenticated, run as several processes over Redis.

Environment: ``REDIS_URL`` (the board lives in Redis, so every process sees the same one) and
``WSLAB_BOARD`` (the board's name, the prefix of its Redis keys); the accounts (users,
passwords, tokens) are in ``accounts.py`` beside this file, with their own settings.
The six functions under "Your parts" are the notebook's exercises.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import time  # noqa: F401 (exercise 3 reads the clock)
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import redis.asyncio as redis
from accounts import NOBODY, USERS, Login, User, issue_token, password_matches, token_claims
from fastapi import Depends, FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.requests import HTTPConnection
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

log = logging.getLogger("capstone")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BOARD = os.environ.get("WSLAB_BOARD", "board")
TASKS, NEXT_ID, EVENTS, ONLINE = (f"{BOARD}:{key}" for key in ("tasks", "id", "events", "online"))
HISTORY = 1000  # events kept in the stream for clients that reconnect
AUTH_DEADLINE = 5.0  # seconds a new socket has to authenticate
QUEUE_SIZE = 100  # events waiting for one client before it counts as a slow consumer
SLOW_CONSUMER = 1013  # "try again later": the client fell behind and should reconnect
STREAM_ID = re.compile(r"\d+-\d+")  # what a client may send as "since"


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class TaskChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


def get_store(connection: HTTPConnection) -> redis.Redis:
    return connection.app.state.store


Store = Annotated[redis.Redis, Depends(get_store)]


def newer(event_id: str, than: str) -> bool:
    """Stream ids are "milliseconds-sequence": compare them as numbers, not as text."""
    return tuple(map(int, event_id.split("-"))) > tuple(map(int, than.split("-")))


queues: dict[WebSocket, asyncio.Queue[tuple[str, str] | None]] = {}  # this process's sockets


def publish_locally(event_id: str, event: str) -> None:
    """Queue an event for each socket; a socket whose queue is full is dropped (P13, P31)."""
    for websocket, queue in list(queues.items()):
        if queue.qsize() < QUEUE_SIZE:
            queue.put_nowait((event_id, event))
        else:  # the one slot left is for None: its sender closes it, the others go on
            del queues[websocket]
            queue.put_nowait(None)


async def send_events(websocket: WebSocket, queue: asyncio.Queue[Any], after: str) -> None:
    """Send the queued events newer than ``after``; close a socket that fell behind."""
    while (item := await queue.get()) is not None:
        if newer(item[0], after):
            await websocket.send_text(item[1])
    async with asyncio.timeout(2):  # a stalled peer may never take the close frame
        await websocket.close(SLOW_CONSUMER, "too slow: reconnect and resync")


def as_text(event_id: str, fields: dict[str, str]) -> str:
    return json.dumps({"id": event_id, **json.loads(fields["event"])})


async def relay_events(store: redis.Redis) -> None:
    """One stream reader per process, fanned out to this process's sockets (P28, P29)."""
    last = None
    while True:
        try:
            if last is None:
                newest = await store.xrevrange(EVENTS, count=1)
                last = newest[0][0] if newest else "0-0"
            for _, entries in await store.xread({EVENTS: last}, block=1000) or []:
                for last, fields in entries:
                    publish_locally(last, as_text(last, fields))
        except (RedisError, OSError):
            log.warning("Redis is out of reach: reading again in a second, from %s", last)
            await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.store = redis.from_url(REDIS_URL, decode_responses=True)
    relay = asyncio.create_task(relay_events(app.state.store))
    yield
    while not relay.done():  # redis-py can swallow a cancellation: ask until it ends
        relay.cancel()
        await asyncio.wait([relay], timeout=0.1)
    await app.state.store.aclose()


app = FastAPI(title="wslab capstone: live task board", lifespan=lifespan)


async def all_tasks(store: redis.Redis) -> list[dict[str, Any]]:
    stored = await store.hgetall(TASKS)
    return sorted((json.loads(task) for task in stored.values()), key=lambda task: task["id"])


async def announce(store: redis.Redis, event: dict[str, Any]) -> str:
    """Append an event to the board's stream; call it only once the change is stored (P16)."""
    return await store.xadd(EVENTS, {"event": json.dumps(event)}, maxlen=HISTORY)


# Your parts: the notebook's exercises replace these six functions ----------------------


async def remove_task(store: redis.Redis, task_id: int, user: str) -> dict[str, Any]:
    """Exercise 1: delete the task, announce task_deleted, return it; 404 if there is none."""
    raise HTTPException(501, "not written yet: exercise 1")


async def arrived(store: redis.Redis, user: str) -> None:
    """Exercise 2: one more open socket for ``user``, seen by every process."""


async def departed(store: redis.Redis, user: str) -> None:
    """Exercise 2: one socket fewer for ``user``."""


async def online(store: redis.Redis) -> list[str]:
    """Exercise 2: the users with at least one open socket, sorted."""
    return []


async def listen(websocket: WebSocket, claims: dict[str, Any]) -> None:
    """Exercise 3: read until the client leaves; today the session outlives the token."""
    while True:
        await websocket.receive_text()


async def missed(store: redis.Redis, since: str) -> list[tuple[str, dict[str, str]]]:
    """Exercise 4: the stream's entries after ``since``, for a client that reconnects."""
    return []


# Routes --------------------------------------------------------------------------------


@app.post("/login")
async def login(credentials: Login) -> dict[str, str]:
    stored = USERS.get(credentials.username, NOBODY)
    matches = await asyncio.to_thread(password_matches, credentials.password, stored)
    if not matches or credentials.username not in USERS:
        raise HTTPException(401, "wrong username or password")
    return {"token": issue_token(credentials.username), "user": credentials.username}


@app.get("/tasks")
async def list_tasks(user: User, store: Store) -> list[dict[str, Any]]:
    return await all_tasks(store)


@app.post("/tasks", status_code=201)
async def create_task(new: NewTask, user: User, store: Store) -> dict[str, Any]:
    task = {"id": await store.incr(NEXT_ID), "title": new.title, "done": False}
    await store.hset(TASKS, str(task["id"]), json.dumps(task))
    await announce(store, {"type": "task_created", "task": task, "user": user})
    return task


@app.put("/tasks/{task_id}")
async def update_task(task_id: int, change: TaskChange, user: User, store: Store) -> dict[str, Any]:
    stored = await store.hget(TASKS, str(task_id))
    if stored is None:
        raise HTTPException(404, f"no task {task_id}")
    task = json.loads(stored) | change.model_dump(exclude_none=True)
    await store.hset(TASKS, str(task_id), json.dumps(task))
    await announce(store, {"type": "task_updated", "task": task, "user": user})
    return task


@app.delete("/tasks/{task_id}")
async def delete_task(task_id: int, user: User, store: Store) -> dict[str, Any]:
    return await remove_task(store, task_id, user)  # exercise 1


def parse_message(text: str) -> dict[str, Any]:
    """A client's message as a JSON object; {} if it is not JSON or not an object."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return message if isinstance(message, dict) else {}


async def first_message(websocket: WebSocket) -> dict[str, Any]:
    """The first message, parsed; {} if it does not come within the deadline or is binary."""
    try:
        async with asyncio.timeout(AUTH_DEADLINE):
            return parse_message(await websocket.receive_text())
    except (TimeoutError, KeyError):  # KeyError: a binary frame has no "text"
        return {}


@app.websocket("/ws/tasks")
async def task_events(websocket: WebSocket) -> None:
    """First-message auth (no token in a URL or a log), replay, then live events."""
    store = websocket.app.state.store
    await websocket.accept()
    try:
        first = await first_message(websocket)
    except WebSocketDisconnect:
        return
    claims = token_claims(first.get("token"))
    if claims is None:
        await websocket.close(1008, 'authenticate first: {"token": ...}')
        return
    user, since = claims["sub"], first.get("since")
    since = since if isinstance(since, str) and STREAM_ID.fullmatch(since) else None
    queue = queues[websocket] = asyncio.Queue(QUEUE_SIZE + 1)  # live events queue from now on
    try:
        await arrived(store, user)  # exercise 2
        await announce(store, {"type": "presence", "online": await online(store)})
        tasks = await all_tasks(store)
        await websocket.send_json({"type": "hello", "user": user, "tasks": tasks})
        replay = await missed(store, since) if since else []  # exercise 4
        for event_id, fields in replay:  # what the client missed, then the live queue
            await websocket.send_text(as_text(event_id, fields))
        after = replay[-1][0] if replay else since or "0-0"
        sender = asyncio.create_task(send_events(websocket, queue, after))
        try:
            await listen(websocket, claims)  # exercise 3
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)  # it may have closed the socket
    except WebSocketDisconnect:
        pass
    finally:
        queues.pop(websocket, None)
        with contextlib.suppress(RedisError):
            await departed(store, user)
            await announce(store, {"type": "presence", "online": await online(store)})


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("index.html"))


@app.get("/page.js")
async def script() -> FileResponse:
    return FileResponse(Path(__file__).with_name("page.js"))
