"""Capstone: a live task board with authentication, run as several processes over Redis.

Environment: ``REDIS_URL`` (required: tasks and events live in Redis, so every process
sees the same board) and ``WSLAB_JWT_SECRET`` (shared by every process; without it each
process signs with its own random secret and logs a warning).
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import jwt
import redis.asyncio as redis
from fastapi import Depends, FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

log = logging.getLogger("capstone")
CHANNEL = "capstone:events"
TOKEN_SECONDS = int(os.environ.get("WSLAB_TOKEN_SECONDS", "900"))
AUTH_DEADLINE = 5.0  # seconds a new socket has to authenticate
QUEUE_SIZE = 100  # events waiting for one client before it counts as a slow consumer
SLOW_CONSUMER = 1013  # "try again later": the client fell behind and should reconnect

SECRET = os.environ.get("WSLAB_JWT_SECRET") or ""
if not SECRET:
    SECRET = secrets.token_urlsafe(32)
    log.warning("WSLAB_JWT_SECRET is not set: tokens only work on this process")


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)


_SALT = secrets.token_bytes(16)
DEMO_PASSWORDS = {"ada": "lovelace", "alan": "turing"}  # demo only: shown on the page
USERS = {name: _hash(password, _SALT) for name, password in DEMO_PASSWORDS.items()}


class Login(BaseModel):
    username: str
    password: str


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class TaskChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


def issue_token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + TOKEN_SECONDS}, SECRET, "HS256")


def user_from_token(token: str) -> str | None:
    """The user a valid, unexpired token names; None for anything else."""
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError:
        return None
    user = claims.get("sub")
    return user if user in USERS else None


def current_user(
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> str:
    user = user_from_token(credentials.credentials) if credentials else None
    if user is None:
        raise HTTPException(401, "a valid bearer token is required")
    return user


class Clients:
    """This process's sockets: a bounded queue and one sender task per connection."""

    def __init__(self) -> None:
        self.queues: dict[WebSocket, asyncio.Queue[str]] = {}
        self.closing: set[asyncio.Task[None]] = set()  # held, so none is garbage-collected
        self.dropped = 0

    async def serve(self, websocket: WebSocket) -> None:
        """Send this socket's queued events until it disconnects or falls behind."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.queues[websocket] = queue
        try:
            while True:
                await websocket.send_text(await queue.get())
        finally:
            self.queues.pop(websocket, None)

    def publish_locally(self, event: str) -> None:
        for websocket, queue in list(self.queues.items()):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                self.queues.pop(websocket, None)
                task = asyncio.create_task(_close_slow(websocket))
                self.closing.add(task)
                task.add_done_callback(self.closing.discard)


async def _close_slow(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):  # a stalled peer may never take the close frame
            await websocket.close(SLOW_CONSUMER, "too slow: reconnect and resync")


clients = Clients()


async def relay_events(store: redis.Redis) -> None:
    """One Redis subscription per process, fanned out to this process's sockets."""
    async with store.pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        async for message in pubsub.listen():
            if message["type"] == "message":
                clients.publish_locally(message["data"])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.store = redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    relay = asyncio.create_task(relay_events(app.state.store))
    yield
    relay.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay
    await app.state.store.aclose()


app = FastAPI(title="wslab capstone: live task board", lifespan=lifespan)


async def all_tasks(store: redis.Redis) -> list[dict[str, Any]]:
    stored = await store.hgetall("capstone:tasks")
    return sorted((json.loads(task) for task in stored.values()), key=lambda task: task["id"])


async def announce(store: redis.Redis, kind: str, task: dict[str, Any], user: str) -> None:
    """Publish an event: called only after the change is stored (P16)."""
    event = {"type": kind, "task": task, "user": user, "ts": time.time()}
    await store.publish(CHANNEL, json.dumps(event))


@app.post("/login")
async def login(credentials: Login) -> dict[str, str]:
    stored = USERS.get(credentials.username)
    given = _hash(credentials.password, _SALT)
    if stored is None or not hmac.compare_digest(stored, given):
        raise HTTPException(401, "wrong username or password")
    return {"token": issue_token(credentials.username), "user": credentials.username}


@app.get("/tasks")
async def list_tasks(user: Annotated[str, Depends(current_user)]) -> list[dict[str, Any]]:
    return await all_tasks(app.state.store)


@app.post("/tasks", status_code=201)
async def create_task(new: NewTask, user: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
    store = app.state.store
    task = {"id": await store.incr("capstone:next_id"), "title": new.title, "done": False}
    await store.hset("capstone:tasks", str(task["id"]), json.dumps(task))
    await announce(store, "task_created", task, user)
    return task


@app.put("/tasks/{task_id}")
async def update_task(
    task_id: int, change: TaskChange, user: Annotated[str, Depends(current_user)]
) -> dict[str, Any]:
    store = app.state.store
    stored = await store.hget("capstone:tasks", str(task_id))
    if stored is None:
        raise HTTPException(404, f"no task {task_id}")
    task = json.loads(stored) | change.model_dump(exclude_none=True)
    await store.hset("capstone:tasks", str(task_id), json.dumps(task))
    await announce(store, "task_updated", task, user)
    return task


@app.websocket("/ws/tasks")
async def task_events(websocket: WebSocket) -> None:
    """First-message auth (no token in the URL or the access log), then live events."""
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_DEADLINE):
            first = await websocket.receive_text()
        token = json.loads(first).get("token", "") if first.startswith("{") else ""
    except (TimeoutError, json.JSONDecodeError, AttributeError):
        token = ""
    except WebSocketDisconnect:
        return
    user = user_from_token(token) if isinstance(token, str) else None
    if user is None:
        await websocket.close(1008, 'authenticate first: {"token": ...}')
        return
    await websocket.send_json(
        {"type": "hello", "user": user, "tasks": await all_tasks(app.state.store)}
    )
    sender = asyncio.create_task(clients.serve(websocket))
    try:
        while True:
            await websocket.receive_text()  # clients only listen; this notices them leaving
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wslab capstone: task board</title>
<style>body{font:16px system-ui;margin:2rem;max-width:40rem}
.done{text-decoration:line-through}</style>
</head><body>
<h1>Task board</h1>
<form id="login"><input id="user" value="ada"> <input id="password" type="password"
value="lovelace"> <button>Log in</button></form>
<p id="status">logged out</p>
<form id="add" hidden><input id="title" placeholder="new task"> <button>Add</button></form>
<ul id="tasks"></ul>
<script>
let token = null;
const tasks = new Map();
const $ = (id) => document.getElementById(id);
function render() {
  $("tasks").replaceChildren(...[...tasks.values()].sort((a, b) => a.id - b.id).map((task) => {
    const item = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = task.done;
    box.onchange = () => api("PUT", `/tasks/${task.id}`, {done: box.checked});
    const label = document.createElement("span");
    label.textContent = task.title; label.className = task.done ? "done" : "";
    item.append(box, " ", label); item.dataset.id = task.id;
    return item;
  }));
}
function api(method, path, body) {
  return fetch(path, {method, headers: {"Content-Type": "application/json",
    Authorization: `Bearer ${token}`}, body: JSON.stringify(body)});
}
function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/tasks`);
  ws.onopen = () => ws.send(JSON.stringify({token}));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      $("status").textContent = `live as ${message.user}`; $("add").hidden = false;
      message.tasks.forEach((task) => tasks.set(task.id, task));
    } else { tasks.set(message.task.id, message.task); }
    render();
  };
  ws.onclose = (event) => { $("status").textContent = `disconnected (${event.code})`; };
}
$("login").onsubmit = async (event) => {
  event.preventDefault();
  const reply = await fetch("/login", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("user").value, password: $("password").value})});
  if (!reply.ok) { $("status").textContent = "login failed"; return; }
  token = (await reply.json()).token; connect();
};
$("add").onsubmit = (event) => {
  event.preventDefault(); api("POST", "/tasks", {title: $("title").value}); $("title").value = "";
};
</script></body></html>
"""
