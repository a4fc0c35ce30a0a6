"""Connection managers: rooms, broadcast, and the bugs they hide.

One app, four pages: chat with rooms at ``/``, a shared canvas at ``/canvas``, a live
dashboard at ``/dashboard`` and a task board at ``/board`` whose REST changes are pushed
to every subscriber. Every message goes through one production manager, ``Hub``: a
bounded queue and one sender task per connection, so a client that stops reading cannot
stall anyone else.

Run it: ``wslab serve 03`` (or ``uvicorn app:app`` in this folder) and open the pages.
"""

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# --- The production manager, the same in app.py and manager_4_production.py -------

SLOW_CONSUMER = 1013  # close code for a client that fell too far behind: "try again later"


class Client:
    """One connection: who it is, its rooms, a bounded outbox and the task that drains it."""

    def __init__(self, websocket: WebSocket, user: str, queue_size: int) -> None:
        self.websocket = websocket
        self.user = user
        self.rooms: set[str] = set()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.session = anyio.CancelScope()  # cancelled to end this client's handler
        self.sender: asyncio.Task[None] | None = None
        self.dropped = False


class Hub:
    """Every connection and room. Sending never awaits anybody's socket.

    ``send`` and ``publish`` put the encoded event in each recipient's bounded outbox and
    return at once; each client's own sender task writes to its socket. A client whose
    outbox is full has stopped reading: it is dropped, closed with ``SLOW_CONSUMER``
    (giving up after ``close_timeout``: a stalled peer may never take the close frame),
    and counted in ``dropped``.
    """

    def __init__(self, queue_size: int = 256, close_timeout: float = 1.0) -> None:
        self.queue_size = queue_size
        self.close_timeout = close_timeout
        self.clients: set[Client] = set()
        self.rooms: dict[str, set[Client]] = {}
        self.dropped = 0
        self._closing: set[asyncio.Task[None]] = set()  # strong references to close tasks

    @asynccontextmanager
    async def connect(self, websocket: WebSocket, user: str) -> AsyncIterator[Client]:
        """Accept and register a client for the block; unregister it however the block ends.

        The block ends early, without an error, if the hub drops the client.
        """
        await websocket.accept()
        client = Client(websocket, user, self.queue_size)
        client.sender = asyncio.create_task(self._pump(client))
        self.clients.add(client)
        try:
            with client.session:
                yield client
        finally:
            self._forget(client)
            client.sender.cancel()
            await asyncio.wait([client.sender])

    def join(self, client: Client, room: str) -> int:
        """Put ``client`` in ``room``; the number of members now."""
        members = self.rooms.setdefault(room, set())
        members.add(client)
        client.rooms.add(room)
        return len(members)

    def leave(self, client: Client, room: str) -> int:
        """Take ``client`` out of ``room`` (a no-op if it is not there); members left."""
        members = self.rooms.get(room, set())
        members.discard(client)
        client.rooms.discard(room)
        if not members:
            self.rooms.pop(room, None)
        return len(members)

    def members(self, room: str) -> list[str]:
        """The users in ``room``, sorted (a user with two tabs open appears twice)."""
        return sorted(client.user for client in self.rooms.get(room, ()))

    def send(self, client: Client, event: dict[str, Any]) -> bool:
        """Queue ``event`` for one client; False if it is gone or was just dropped."""
        return self._offer(client, json.dumps(event))

    def publish(self, room: str, event: dict[str, Any], exclude: Client | None = None) -> int:
        """Queue ``event`` for everyone in ``room`` except ``exclude``; how many took it."""
        text = json.dumps(event)  # encoded once, whatever the number of recipients
        # A snapshot: dropping a slow client removes it from the room while we loop (P12).
        recipients = [client for client in self.rooms.get(room, ()) if client is not exclude]
        return sum(self._offer(client, text) for client in recipients)

    def stats(self) -> dict[str, Any]:
        rooms = {room: len(members) for room, members in sorted(self.rooms.items())}
        return {"clients": len(self.clients), "rooms": rooms, "dropped": self.dropped}

    def _offer(self, client: Client, text: str) -> bool:
        if client.dropped or client not in self.clients:
            return False
        try:
            client.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self._drop(client)
            return False
        return True

    async def _pump(self, client: Client) -> None:
        """The only code that writes to this client's socket: one message at a time."""
        try:
            while True:
                await client.websocket.send_text(await client.outbox.get())
        except WebSocketDisconnect:
            client.session.cancel()  # the peer is gone: end its handler too

    def _drop(self, client: Client) -> None:
        client.dropped = True
        self.dropped += 1
        self._forget(client)
        task = asyncio.create_task(self._close_slow(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_slow(self, client: Client) -> None:
        assert client.sender is not None
        client.sender.cancel()
        await asyncio.wait([client.sender])
        # The close frame waits behind everything the peer has not read: bound the wait.
        with suppress(TimeoutError, WebSocketDisconnect):
            async with asyncio.timeout(self.close_timeout):
                await client.websocket.close(SLOW_CONSUMER, "slow consumer: too far behind")
        client.session.cancel()

    def _forget(self, client: Client) -> None:
        self.clients.discard(client)
        for room in list(client.rooms):
            self.leave(client, room)


# --- End of the production manager ------------------------------------------------

hub = Hub()
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
T = TypeVar("T")


def now() -> float:
    return round(time.time(), 3)


def error_text(exc: ValidationError) -> str:
    """``text: String should have at least 1 character; …`` from a pydantic error."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)


async def next_event(client: Client, events: TypeAdapter[T]) -> T | None:
    """The next valid event from ``client``; None once it left. Bad input gets an error."""
    while True:
        message = await client.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is None:
            hub.send(client, {"type": "error", "error": "send JSON text frames, not binary"})
            continue
        try:
            return events.validate_json(message["text"])
        except ValidationError as exc:
            hub.send(client, {"type": "error", "error": error_text(exc)})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # "user" or "room" from a client is refused


# --- Chat with rooms ----------------------------------------------------------------


class Say(Strict):
    type: Literal["message"]
    text: str = Field(min_length=1, max_length=1000)


class Whisper(Strict):
    type: Literal["whisper"]
    to: Name
    text: str = Field(min_length=1, max_length=1000)


ChatEvent = TypeAdapter(Annotated[Say | Whisper, Field(discriminator="type")])


def chat_event(kind: str, room: str, user: str, text: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "room": room, "user": user, "text": text, "ts": now(), **extra}


async def chat(websocket: WebSocket, room: str, user: str) -> None:
    """Join ``room`` as ``user``: messages go to the others, whispers to one user."""
    key = f"chat:{room}"
    try:
        async with hub.connect(websocket, user) as client:
            count = hub.join(client, key)
            hub.send(client, chat_event("welcome", room, user, members=hub.members(key)))
            hub.publish(key, chat_event("join", room, user, members=count), exclude=client)
            while (event := await next_event(client, ChatEvent)) is not None:
                if isinstance(event, Say):
                    hub.publish(key, chat_event("message", room, user, event.text), client)
                    continue
                targets = [c for c in hub.rooms.get(key, ()) if c.user == event.to]
                for target in targets:
                    hub.send(target, chat_event("whisper", room, user, event.text, to=event.to))
                if not targets:
                    hub.send(client, {"type": "error", "error": f"nobody called {event.to!r}"})
    finally:
        members = len(hub.rooms.get(key, ()))
        hub.publish(key, chat_event("leave", room, user, members=members))


# --- Tasks: REST changes pushed to WebSocket subscribers -----------------------------


class NewTask(Strict):
    title: str = Field(min_length=1, max_length=200)


class TaskChange(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


class Task(BaseModel):
    id: int
    title: str
    done: bool = False


class TaskStore:
    """The tasks; a title must be unique, so a change can fail (HTTP 409)."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.last_id = 0

    def _check_title(self, title: str, task_id: int = 0) -> None:
        if any(task.title == title and task.id != task_id for task in self.tasks.values()):
            raise HTTPException(409, f"a task called {title!r} already exists")

    def create(self, new: NewTask) -> Task:
        self._check_title(new.title)
        self.last_id += 1
        task = self.tasks[self.last_id] = Task(id=self.last_id, title=new.title)
        return task

    def update(self, task_id: int, change: TaskChange) -> Task:
        if task_id not in self.tasks:
            raise HTTPException(404, f"no task {task_id}")
        if change.title is not None:
            self._check_title(change.title, task_id)
        updated = self.tasks[task_id].model_copy(update=change.model_dump(exclude_none=True))
        self.tasks[task_id] = updated
        return updated


tasks = TaskStore()
TASKS = "tasks"


async def listen_only(client: Client) -> None:
    """Hold a push-only connection open until the client leaves; it has nothing to say."""
    while (await client.websocket.receive())["type"] != "websocket.disconnect":
        hub.send(client, {"type": "error", "error": "this endpoint only pushes events"})


# --- Dashboard: one push loop, owned, alive while someone watches ---------------------


class Dashboard:
    """The loop that pushes metrics to ``/ws/dashboard``.

    Exactly one task, held here: started by the first watcher, cancelled with the last
    one and at shutdown. Cancelling is immediate, so a quick reconnect starts a fresh
    loop and the old one can never push again.
    """

    room = "dashboard"

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    def watch(self, client: Client) -> None:
        hub.join(client, self.room)
        if self.task is None:
            self.task = asyncio.create_task(self._push())

    def release(self) -> None:
        """Stop the loop if nobody watches any more."""
        if self.task is not None and not hub.rooms.get(self.room):
            self.task.cancel()
            self.task = None

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])
            self.task = None

    async def _push(self) -> None:
        tick = 0
        while True:
            tick += 1
            metrics = {"type": "metrics", "tick": tick, "ts": now(), "tasks": len(tasks.tasks)}
            hub.publish(self.room, metrics | hub.stats() | {"load": random.randint(5, 95)})
            await asyncio.sleep(self.interval)


dashboard = Dashboard()


# --- Shared canvas ------------------------------------------------------------------

Coordinate = Annotated[float, Field(ge=0, le=4000)]


class Stroke(Strict):
    type: Literal["stroke"]
    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=2000)
    color: str = Field(default="#000000", pattern=r"^#[0-9a-fA-F]{6}$")
    width: float = Field(default=3, ge=1, le=50)


class Clear(Strict):
    type: Literal["clear"]


CanvasEvent = TypeAdapter(Annotated[Stroke | Clear, Field(discriminator="type")])
CANVAS = "canvas"
strokes: deque[dict[str, Any]] = deque(maxlen=5000)  # the history a newcomer replays


# --- The app ------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await dashboard.stop()


app = FastAPI(title="wslab 03: connection managers", lifespan=lifespan)


@app.websocket("/ws/chat/{room}")
async def chat_endpoint(websocket: WebSocket, room: Name, user: Annotated[Name, Query()]) -> None:
    await chat(websocket, room, user)


@app.get("/tasks")
async def list_tasks() -> list[Task]:
    return list(tasks.tasks.values())


@app.post("/tasks", status_code=201)
async def create_task(new: NewTask) -> Task:
    task = tasks.create(new)  # raises HTTP 409 on a duplicate title: then nothing is published
    hub.publish(TASKS, {"type": "task_created", "task": task.model_dump(), "ts": now()})
    return task


@app.put("/tasks/{task_id}")
async def update_task(task_id: int, change: TaskChange) -> Task:
    task = tasks.update(task_id, change)  # raises 404 or 409 first, publishing nothing
    hub.publish(TASKS, {"type": "task_updated", "task": task.model_dump(), "ts": now()})
    return task


@app.websocket("/ws/tasks")
async def task_events(websocket: WebSocket) -> None:
    """Every task now, then ``task_created`` and ``task_updated`` as they happen."""
    async with hub.connect(websocket, "subscriber") as client:
        hub.join(client, TASKS)
        current = [task.model_dump() for task in tasks.tasks.values()]
        hub.send(client, {"type": "tasks", "tasks": current, "ts": now()})
        await listen_only(client)


@app.websocket("/ws/dashboard")
async def dashboard_endpoint(websocket: WebSocket) -> None:
    try:
        async with hub.connect(websocket, "watcher") as client:
            dashboard.watch(client)
            await listen_only(client)
    finally:
        dashboard.release()


@app.websocket("/ws/canvas")
async def canvas_endpoint(websocket: WebSocket, user: Annotated[Name, Query()] = "artist") -> None:
    """Replay the history, then pass strokes to the others; a clear is for everyone."""
    async with hub.connect(websocket, user) as client:
        hub.join(client, CANVAS)
        hub.send(client, {"type": "history", "strokes": list(strokes), "ts": now()})
        while (event := await next_event(client, CanvasEvent)) is not None:
            if isinstance(event, Clear):
                strokes.clear()
                hub.publish(CANVAS, {"type": "clear", "user": user, "ts": now()})
                continue
            stroke = event.model_dump() | {"user": user, "ts": now()}
            strokes.append(stroke)
            hub.publish(CANVAS, stroke, exclude=client)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return hub.stats() | {"push_loops": int(dashboard.task is not None), "strokes": len(strokes)}


# --- Pages --------------------------------------------------------------------------

HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wslab 03: {title}</title>
<style>body{{font:16px system-ui;margin:2rem;max-width:46rem}} nav a{{margin-right:1rem}}
ul{{padding-left:1.2rem}} .error{{color:#b00}} .system{{color:#666}}</style></head>
<body><nav><a href="/">chat</a><a href="/canvas">canvas</a><a href="/dashboard">dashboard</a>
<a href="/board">task board</a></nav><h1>{title}</h1><p id="status">not connected</p>
<script>
const wsUrl = (path) => `${{location.protocol === "https:" ? "wss" : "ws"}}://${{location.host}}${{path}}`;
const setStatus = (text) => {{ document.getElementById("status").textContent = text; }};
const addLine = (text, cls = "") => {{
  const li = document.createElement("li"); li.textContent = text; li.className = cls;
  document.getElementById("log").appendChild(li);
}};
</script>
"""

CHAT = """
<form id="join">room <input id="room" value="lobby" size="10"> name <input id="user" size="10">
<button>Join</button></form>
<p>members: <span id="members">0</span></p>
<form id="say"><input id="text" autocomplete="off" placeholder="message, or @name whisper">
<button>Send</button></form>
<ul id="log"></ul>
<script>
let ws = null;
function join(room, user) {
  if (ws) ws.close();
  const path = `/ws/chat/${encodeURIComponent(room)}?user=${encodeURIComponent(user)}`;
  ws = new WebSocket(wsUrl(path));
  ws.onopen = () => setStatus(`connected to ${room} as ${user}`);
  ws.onclose = (e) => setStatus(`closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
  ws.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    if ("members" in ev) document.getElementById("members").textContent =
      Array.isArray(ev.members) ? ev.members.length : ev.members;
    if (ev.type === "message") addLine(`${ev.user}: ${ev.text}`, "message");
    else if (ev.type === "whisper") addLine(`${ev.user} (to you): ${ev.text}`, "message whisper");
    else if (ev.type === "error") addLine(`error: ${ev.error}`, "error");
    else addLine(`${ev.user} ${ev.type === "welcome" ? "(you) joined" : ev.type + "s"}`, "system");
  };
}
document.getElementById("join").onsubmit = (e) => {
  e.preventDefault();
  join(document.getElementById("room").value, document.getElementById("user").value);
};
document.getElementById("say").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  const whisper = input.value.match(/^@(\\S+)\\s+(.+)$/);
  ws.send(JSON.stringify(whisper ? {type: "whisper", to: whisper[1], text: whisper[2]}
                                 : {type: "message", text: input.value}));
  addLine(`me: ${input.value}`, "mine");
  input.value = "";
};
const query = new URLSearchParams(location.search);
if (query.get("user")) join(query.get("room") || "lobby", query.get("user"));
</script></body></html>
"""

CANVAS_PAGE = """
<p>strokes on the canvas: <span id="strokes">0</span> <button id="clear">Clear for everyone</button>
<input id="color" type="color" value="#1f77b4"></p>
<canvas id="canvas" width="600" height="400" style="border:1px solid #888;touch-action:none">
</canvas>
<script>
const canvas = document.getElementById("canvas"), ctx = canvas.getContext("2d");
let count = 0, points = null;
const ws = new WebSocket(wsUrl("/ws/canvas?user=artist"));
function draw(stroke) {
  ctx.strokeStyle = stroke.color; ctx.lineWidth = stroke.width; ctx.lineCap = "round";
  ctx.beginPath(); ctx.moveTo(...stroke.points[0]);
  for (const p of stroke.points) ctx.lineTo(...p);
  ctx.stroke(); document.getElementById("strokes").textContent = ++count;
}
function wipe() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  count = 0; document.getElementById("strokes").textContent = 0;
}
ws.onopen = () => setStatus("connected");
ws.onclose = (e) => setStatus(`closed (${e.code})`);
ws.onmessage = (e) => {
  const ev = JSON.parse(e.data);
  if (ev.type === "history") ev.strokes.forEach(draw);
  else if (ev.type === "stroke") draw(ev);
  else if (ev.type === "clear") wipe();
};
const at = (e) => [e.offsetX, e.offsetY];
canvas.onpointerdown = (e) => { points = [at(e)]; };
canvas.onpointermove = (e) => { if (points) points.push(at(e)); };
canvas.onpointerup = () => {
  if (!points) return;
  const stroke = {type: "stroke", points, color: document.getElementById("color").value, width: 3};
  points = null; draw(stroke); ws.send(JSON.stringify(stroke));
};
document.getElementById("clear").onclick = () => ws.send(JSON.stringify({type: "clear"}));
</script></body></html>
"""

DASHBOARD_PAGE = """
<table><tbody id="metrics"></tbody></table>
<script>
const ws = new WebSocket(wsUrl("/ws/dashboard"));
ws.onopen = () => setStatus("connected");
ws.onclose = (e) => setStatus(`closed (${e.code})`);
ws.onmessage = (e) => {
  const ev = JSON.parse(e.data);
  document.getElementById("metrics").innerHTML = "";
  for (const [key, value] of Object.entries(ev)) {
    const row = document.getElementById("metrics").insertRow();
    row.insertCell().textContent = key; row.insertCell().textContent = JSON.stringify(value);
  }
};
</script></body></html>
"""

BOARD_PAGE = """
<form id="add"><input id="title" placeholder="new task"><button>Add</button></form>
<ul id="log"></ul>
<script>
const ws = new WebSocket(wsUrl("/ws/tasks"));
function show(task) {
  let li = document.getElementById(`task-${task.id}`);
  if (!li) {
    li = document.createElement("li"); li.id = `task-${task.id}`;
    li.onclick = () => fetch(`/tasks/${task.id}`, {method: "PUT",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({done: !li.classList.contains("done")})});
    document.getElementById("log").appendChild(li);
  }
  li.textContent = `${task.done ? "✓" : "○"} ${task.title}`;
  li.className = task.done ? "done" : "";
}
ws.onopen = () => setStatus("connected: click a task to toggle it");
ws.onclose = (e) => setStatus(`closed (${e.code})`);
ws.onmessage = (e) => {
  const ev = JSON.parse(e.data);
  if (ev.type === "tasks") ev.tasks.forEach(show); else show(ev.task);
};
document.getElementById("add").onsubmit = async (e) => {
  e.preventDefault();
  const input = document.getElementById("title");
  const answer = await fetch("/tasks", {method: "POST",
    headers: {"content-type": "application/json"}, body: JSON.stringify({title: input.value})});
  if (!answer.ok) addLine(`error: ${(await answer.json()).detail}`, "error");
  input.value = "";
};
</script></body></html>
"""


@app.get("/")
async def chat_page() -> HTMLResponse:
    return HTMLResponse(HEAD.format(title="chat with rooms") + CHAT)


@app.get("/canvas")
async def canvas_page() -> HTMLResponse:
    return HTMLResponse(HEAD.format(title="shared canvas") + CANVAS_PAGE)


@app.get("/dashboard")
async def dashboard_page() -> HTMLResponse:
    return HTMLResponse(HEAD.format(title="live dashboard") + DASHBOARD_PAGE)


@app.get("/board")
async def board_page() -> HTMLResponse:
    return HTMLResponse(HEAD.format(title="task board") + BOARD_PAGE)
