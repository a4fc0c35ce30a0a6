"""Scaling: heartbeats, limits, backpressure and Redis fan-out across processes.

One chat room shared by every process: each process keeps its own WebSockets and reads
every event from a broker chosen by ``BROKER_URL``: ``memory://`` (the default: this
process only) or ``redis://host:port/0`` (a Redis Stream that every process reads with
ONE connection, and that clients resume from by their last event id).

Run two instances over one Redis (or just ``wslab serve 05 --instances 2``)::

    BROKER_URL=redis://127.0.0.1:6379/0 uvicorn app:app --port 8001 --ws-max-size 65536
    BROKER_URL=redis://127.0.0.1:6379/0 uvicorn app:app --port 8002 --ws-max-size 65536
"""

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import redis.asyncio as aioredis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Event = dict[str, Any]
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class Settings:
    """Every knob of the app; ``from_env()`` reads them from environment variables."""

    broker_url: str = "memory://"
    instance: str = field(default_factory=lambda: f"pid{os.getpid()}")
    stream: str = "wslab:room"
    history: int = 1000  # events kept for replay
    max_message_bytes: int = 4096  # application limit: a bigger message is closed with 1009
    rate: float = 20.0  # token bucket: messages per second a client may send on average...
    burst: int = 40  # ...and at once; beyond that: close 1008
    queue_size: int = 256  # per-connection queue; full means a slow consumer: close 1013
    heartbeat_interval: float = 15.0  # the server sends {"type": "ping"} this often...
    heartbeat_timeout: float = 10.0  # ...and closes a client silent for interval + timeout
    peers: tuple[int, ...] = ()  # every instance's port: the page reconnects along them

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        defaults = cls()
        return cls(
            broker_url=env.get("BROKER_URL", defaults.broker_url),
            instance=env.get("INSTANCE", defaults.instance),
            max_message_bytes=int(env.get("MAX_MESSAGE_BYTES", defaults.max_message_bytes)),
            rate=float(env.get("RATE", defaults.rate)),
            burst=int(env.get("BURST", defaults.burst)),
            queue_size=int(env.get("QUEUE_SIZE", defaults.queue_size)),
            heartbeat_interval=float(env.get("HEARTBEAT_INTERVAL", defaults.heartbeat_interval)),
            heartbeat_timeout=float(env.get("HEARTBEAT_TIMEOUT", defaults.heartbeat_timeout)),
            peers=tuple(int(port) for port in env.get("PEERS", "").split(",") if port.strip()),
        )


def id_key(event_id: str) -> tuple[int, int]:
    """Stream ids ``"<ms>-<seq>"`` compare as pairs of numbers."""
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


# --- brokers: publish, read everything after an id (waiting), replay history ---


class Broker(Protocol):
    errors: tuple[type[BaseException], ...]  # what a broker outage raises

    async def publish(self, event: Event) -> str: ...
    async def last_id(self) -> str: ...
    async def read(self, after: str, block: float) -> list[tuple[str, Event]]: ...
    async def history(self, after: str) -> list[tuple[str, Event]]: ...
    async def close(self) -> None: ...


class MemoryBroker:
    """This process only: fine for one process, blind to every other one (P18)."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, history: int) -> None:
        self.events: deque[tuple[str, Event]] = deque(maxlen=history)
        self.seq = 0
        self.published = asyncio.Event()

    async def publish(self, event: Event) -> str:
        self.seq += 1
        event_id = f"0-{self.seq}"
        self.events.append((event_id, event))
        self.published.set()
        self.published = asyncio.Event()
        return event_id

    async def last_id(self) -> str:
        return f"0-{self.seq}"

    async def history(self, after: str) -> list[tuple[str, Event]]:
        first = self.seq - len(self.events) + 1  # the events kept are numbered first..seq
        skip = max(0, id_key(after)[1] - first + 1)
        return list(itertools.islice(self.events, skip, None))

    async def read(self, after: str, block: float) -> list[tuple[str, Event]]:
        published = self.published
        found = await self.history(after)
        if not found:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(block):
                    await published.wait()
            found = await self.history(after)
        return found

    async def close(self) -> None:
        pass


class RedisBroker:
    """A Redis Stream: every process reads all of it; ids let a reader resume (P29)."""

    errors = (RedisConnectionError, RedisTimeoutError, OSError)

    def __init__(self, url: str, stream: str, history: int) -> None:
        self.stream = stream
        self.maxlen = history
        # Fail fast when Redis is down: the read loop below does its own reconnecting.
        self.redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=1,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 1),
        )

    async def publish(self, event: Event) -> str:
        fields = {"event": json.dumps(event)}
        return await self.redis.xadd(self.stream, fields, maxlen=self.maxlen)

    async def last_id(self) -> str:
        newest = await self.redis.xrevrange(self.stream, count=1)
        return newest[0][0] if newest else "0-0"

    @staticmethod
    def _decode(entries: list[Any]) -> list[tuple[str, Event]]:
        return [(event_id, json.loads(fields["event"])) for event_id, fields in entries]

    async def history(self, after: str) -> list[tuple[str, Event]]:
        return self._decode(await self.redis.xrange(self.stream, min=f"({after}"))

    async def read(self, after: str, block: float) -> list[tuple[str, Event]]:
        reply = await self.redis.xread({self.stream: after}, block=int(block * 1000), count=500)
        return self._decode(reply[0][1]) if reply else []

    async def close(self) -> None:
        await self.redis.aclose()


def open_broker(settings: Settings) -> Broker:
    """``memory://`` or ``redis://...`` (``rediss://`` too), like encode/broadcaster."""
    scheme = settings.broker_url.partition("://")[0]
    if scheme == "memory":
        return MemoryBroker(settings.history)
    if scheme in {"redis", "rediss", "unix"}:
        return RedisBroker(settings.broker_url, settings.stream, settings.history)
    raise ValueError(f"BROKER_URL must be memory:// or redis://..., not {settings.broker_url!r}")


# --- limits ---


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; each message takes one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# --- the connection manager: a bounded queue and a sender task per connection ---


class Connection:
    """One client: its queue of outgoing messages, and why it must be closed, if it must."""

    def __init__(self, websocket: WebSocket, queue_size: int) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[tuple[str | None, str]] = asyncio.Queue(queue_size)
        self.sent_key = (0, 0)  # id of the last event sent: replayed events are not resent
        self.close_code: int | None = None
        self.close_reason = ""
        self.done = asyncio.Event()

    def finish(self, code: int, reason: str) -> None:
        """Ask the handler to close this connection with ``code`` (the first reason wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.done.set()

    def offer(self, event_id: str | None, text: str) -> bool:
        try:
            self.queue.put_nowait((event_id, text))
        except asyncio.QueueFull:
            return False
        return True

    async def send(self, event_id: str | None, text: str) -> None:
        if event_id is not None:
            key = id_key(event_id)
            if key <= self.sent_key:
                return
            self.sent_key = key
        await self.websocket.send_text(text)

    async def sender(self) -> None:
        try:
            while True:
                await self.send(*await self.queue.get())
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client is gone: returning ends the handler


class Hub:
    """This process's connections; ``deliver`` never waits for any client."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.dropped: dict[str, int] = {}
        self.peak_queue = 0

    def deliver(self, event: Event, event_id: str | None = None) -> None:
        text = json.dumps(event if event_id is None else {**event, "id": event_id})
        for conn in list(self.connections):
            if conn.offer(event_id, text):
                self.peak_queue = max(self.peak_queue, conn.queue.qsize())
            else:  # slow-consumer policy: close it, never wait for it, never grow (P31)
                self.drop(conn, 1013, "slow consumer: too many messages queued")

    def drop(self, conn: Connection, code: int, reason: str) -> None:
        self.connections.discard(conn)
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        conn.finish(code, reason)


async def pump(broker: Broker, hub: Hub, last: str | None) -> None:
    """The ONE reader of the broker in this process: it fans every event out locally.

    A broker outage is announced to the clients, retried with backoff, and resumed from
    the last id read, so a stream loses nothing that was published meanwhile.
    """
    down, delay = False, 0.1
    while True:
        try:
            if last is None:
                last = await broker.last_id()
            events = await broker.read(last, block=1.0)
        except broker.errors:
            if not down:
                down = True
                hub.deliver({"type": "broker", "status": "down"})
            await asyncio.sleep(delay * random.random())
            delay = min(delay * 2, 2.0)
            continue
        if down:
            down, delay = False, 0.1
            hub.deliver({"type": "broker", "status": "up"})
        for event_id, event in events:
            last = event_id
            hub.deliver(event, event_id)


async def first_to_return(*functions: Callable[[], Awaitable[object]]) -> None:
    """Run ``functions`` concurrently; when one returns, cancel the others."""
    async with anyio.create_task_group() as group:

        async def run(function: Callable[[], Awaitable[object]]) -> None:
            await function()
            group.cancel_scope.cancel()

        for function in functions:
            group.start_soon(run, function)


# --- the app ---


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: read from the environment)."""
    settings = settings or Settings.from_env()
    hub = Hub()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        broker = state["broker"] = open_broker(settings)
        try:  # read from here on: ready means subscribed (unless the broker is down)
            last = await broker.last_id()
        except broker.errors:
            last = None
        reader = asyncio.create_task(pump(broker, hub, last), name="broker-pump")
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await broker.close()

    app = FastAPI(title="wslab 05: scaling", lifespan=lifespan)

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "instance": settings.instance,
            "broker": settings.broker_url.partition("://")[0],
            "clients": len(hub.connections),
            "queued": max((c.queue.qsize() for c in hub.connections), default=0),
            "peak_queue": hub.peak_queue,
            "dropped": hub.dropped,
        }

    @app.websocket("/ws")
    async def room(websocket: WebSocket, last_id: str | None = None) -> None:
        await websocket.accept()
        conn = Connection(websocket, settings.queue_size)
        hub.connections.add(conn)  # from now on live events queue up for this client
        welcome = {
            "type": "welcome",
            "instance": settings.instance,
            "heartbeat": settings.heartbeat_interval + settings.heartbeat_timeout,
            "peers": list(settings.peers),
        }
        try:
            await websocket.send_text(json.dumps(welcome))
            await replay(conn, last_id)
            await first_to_return(
                conn.sender, lambda: receiver(conn), lambda: heartbeat(conn), conn.done.wait
            )
        except WebSocketDisconnect:
            pass  # the client left during the welcome or the replay
        finally:
            hub.connections.discard(conn)
        if conn.close_code is not None:
            # A stalled peer never reads our close frame: give up after a deadline.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await websocket.close(conn.close_code, conn.close_reason)

    async def replay(conn: Connection, last_id: str | None) -> None:
        """Send what was published after ``last_id`` (a reconnecting client's resume point)."""
        if last_id is None:
            return
        if not EVENT_ID.match(last_id):
            await conn.send(None, json.dumps({"type": "error", "error": "bad last_id"}))
            return
        try:
            missed = await state["broker"].history(last_id)
        except state["broker"].errors:
            await conn.send(None, json.dumps({"type": "error", "error": "cannot replay now"}))
            return
        for event_id, event in missed:
            await conn.send(event_id, json.dumps({**event, "id": event_id}))

    async def receiver(conn: Connection) -> None:
        """Read the client's messages, enforcing the heartbeat, size and rate limits."""
        bucket = TokenBucket(settings.rate, settings.burst)
        silence = settings.heartbeat_interval + settings.heartbeat_timeout
        while True:
            try:
                async with asyncio.timeout(silence):
                    message = await conn.websocket.receive()
            except TimeoutError:  # not even a pong: a dead or half-open peer (P26)
                return conn.finish(1011, "heartbeat timeout")
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is None:
                return conn.finish(1003, "text frames only")
            if len(text.encode()) > settings.max_message_bytes:  # P27
                return conn.finish(1009, f"message over {settings.max_message_bytes} bytes")
            if not bucket.take():  # P32
                return conn.finish(1008, f"rate limit: {settings.rate:g} messages/s")
            await handle(conn, text)

    async def handle(conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
            kind = message.get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "pong":
            return
        if kind != "say" or not isinstance(message.get("text"), str):
            error = {"type": "error", "error": 'send {"type": "say", "text": "..."}'}
            conn.offer(None, json.dumps(error))
            return
        event = {"type": "message", "text": message["text"], "instance": settings.instance}
        try:
            await state["broker"].publish(event)
        except state["broker"].errors:
            conn.offer(None, json.dumps({"type": "error", "error": "broker down: not sent"}))

    async def heartbeat(conn: Connection) -> None:
        """An application ping that browsers can answer (they cannot send protocol pings)."""
        while True:
            await asyncio.sleep(settings.heartbeat_interval)
            if not conn.offer(None, json.dumps({"type": "ping", "t": time.time()})):
                hub.drop(conn, 1013, "slow consumer: too many messages queued")

    return app


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wslab 05: scaling</title>
<style>body{font:16px system-ui;margin:2rem;max-width:44rem}#log{white-space:pre-wrap}</style>
</head>
<body>
<h1>One room, many processes</h1>
<p>Status: <b id="status">connecting…</b> · instance <b id="instance">?</b> ·
reconnections <b id="reconnects">0</b> · last id <code id="last">none</code></p>
<form id="form"><input id="text" autocomplete="off" placeholder="say something" autofocus>
<button>Send</button></form>
<div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
const log = (line) => { $("log").textContent += line + "\\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws";
const BASE = 500, CAP = 15000;      // backoff: 0.5 s doubling up to 15 s...
let attempt = 0, lastId = null, reconnects = 0, ws = null, watchdog = null;
let peers = [], port = location.port;  // the instances' ports, from the welcome

function backoff() {                 // ...with full jitter, so clients do not retry in step
  return Math.random() * Math.min(CAP, BASE * 2 ** attempt++);
}
function alive(seconds) {            // no message, not even a ping: the server is gone
  clearTimeout(watchdog);
  watchdog = setTimeout(() => ws.close(), seconds * 1000);
}
function connect() {
  const query = lastId ? `?last_id=${encodeURIComponent(lastId)}` : "";
  const host = port ? `${location.hostname}:${port}` : location.host;
  ws = new WebSocket(`${scheme}://${host}/ws${query}`);
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id) { lastId = msg.id; $("last").textContent = lastId; }
    if (msg.type === "welcome") {
      attempt = 0;                   // reset on success
      $("status").textContent = "connected";
      $("instance").textContent = msg.instance;
      alive(msg.heartbeat);
      ws.heartbeat = msg.heartbeat;
      peers = msg.peers.map(String);
      return;
    }
    alive(ws.heartbeat);
    if (msg.type === "ping") { ws.send(JSON.stringify({type: "pong"})); return; }
    if (msg.type === "message") log(`${msg.instance}: ${msg.text}`);
    else log(JSON.stringify(msg));
  };
  ws.onclose = (event) => {
    clearTimeout(watchdog);
    const delay = backoff();
    const closed = `closed (${event.code}${event.reason ? " " + event.reason : ""})`;
    $("status").textContent = `${closed}, retrying in ${Math.round(delay)} ms`;
    log(closed);                     // the status changes on every retry; the log keeps them
    if (peers.length) port = peers[(peers.indexOf(port) + 1) % peers.length];  // next instance
    setTimeout(() => { reconnects++; $("reconnects").textContent = reconnects; connect(); },
               delay);
  };
}
$("form").onsubmit = (event) => {
  event.preventDefault();
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({type: "say", text: $("text").value}));
  $("text").value = "";
};
connect();
</script>
</body>
</html>
"""

app = create_app()
