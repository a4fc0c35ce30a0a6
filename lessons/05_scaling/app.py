"""Scaling: heartbeats, limits, backpressure and Redis fan-out across processes.

One chat room shared by every process. Each process keeps its own WebSockets and reads
every event from the broker named by ``BROKER_URL`` (``brokers.py``, beside this file):
``memory://`` (this process only) or ``redis://host:port/0`` (a Redis Stream, read by ONE
reader per process). ``client_guards.py`` holds the rate limit and the close that cannot
hang. Run two, from this folder::

    BROKER_URL=redis://127.0.0.1:6379/0 uvicorn app:app --port 8001 --ws-max-size 65536
    BROKER_URL=redis://127.0.0.1:6379/0 uvicorn app:app --port 8002 --ws-max-size 65536
"""

import asyncio
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from brokers import Event, MemoryBroker, RedisBroker, id_key, open_broker  # beside this file
from client_guards import TokenBucket, close
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

BROKER_URL = os.environ.get("BROKER_URL", "memory://")  # or redis://host:port/0
INSTANCE = os.environ.get("INSTANCE", f"pid{os.getpid()}")
MAX_MESSAGE_BYTES = int(os.environ.get("MAX_MESSAGE_BYTES", "4096"))  # bigger: close 1009
RATE = float(os.environ.get("RATE", "20"))  # messages a client may send per second...
BURST = int(os.environ.get("BURST", "40"))  # ...and at once; beyond that: close 1008
QUEUE_SIZE = int(os.environ.get("QUEUE_SIZE", "256"))  # a full queue: slow consumer, 1013
HEARTBEAT_INTERVAL = float(os.environ.get("HEARTBEAT_INTERVAL", "15"))  # a ping this often
HEARTBEAT_TIMEOUT = float(os.environ.get("HEARTBEAT_TIMEOUT", "10"))  # then silent: gone
CLOSE_TIMEOUT = float(os.environ.get("CLOSE_TIMEOUT", "1"))  # a close frame may take this long
PEERS = [int(port) for port in os.environ.get("PEERS", "").split(",") if port.strip()]
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class Connection:
    """One client: a bounded queue of outgoing messages, drained by its own sender task."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: deque[tuple[tuple[int, int] | None, str]] = deque()
        self.ready = asyncio.Event()  # set when the queue has something to send
        self.sent = (0, 0)  # id of the last event replayed: not sent again when it comes live
        self.close_code: int | None = None
        self.close_reason = ""
        self.done = asyncio.Event()

    def finish(self, code: int, reason: str) -> None:
        """Ask the handler to close this connection with ``code`` (the first reason wins)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.done.set()

    async def sender(self) -> None:
        queue, send = self.queue, self.websocket.send
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                while queue:
                    key, text = queue.popleft()
                    if key is None or key > self.sent:
                        await send({"type": "websocket.send", "text": text})
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client is gone: returning ends the handler


class Hub:
    """This process's connections; ``offer`` never waits for any client."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.dropped: dict[str, int] = {}
        self.peak_queue = 0

    def offer(self, conn: Connection, item: tuple[tuple[int, int] | None, str]) -> None:
        queue = conn.queue
        if len(queue) >= QUEUE_SIZE:  # a slow consumer: drop it, never wait, never grow (P31)
            self.drop(conn, 1013, "slow consumer: too many messages queued")
            return
        queue.append(item)
        conn.ready.set()
        if len(queue) > self.peak_queue:
            self.peak_queue = len(queue)

    def deliver(self, event: Event, event_id: str | None = None) -> None:
        text = json.dumps(event if event_id is None else {**event, "id": event_id})
        item = (None if event_id is None else id_key(event_id), text)
        for conn in list(self.connections):
            self.offer(conn, item)

    def drop(self, conn: Connection, code: int, reason: str) -> None:
        if conn not in self.connections:
            return  # already dropped
        self.connections.discard(conn)
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        conn.finish(code, reason)


hub = Hub()
broker: MemoryBroker | RedisBroker = MemoryBroker()


async def pump(last: str | None) -> None:
    """The ONE reader of the broker in this process: it fans every event out locally.

    An outage is announced to the clients, retried with backoff, and resumed from the last
    id read, so that nothing published meanwhile is lost.
    """
    down, delay = False, 0.1
    while True:
        try:
            last = last or await broker.last_id()
            events = await broker.read(last)
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
        for last, event in events:
            hub.deliver(event, last)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global broker
    broker = open_broker(BROKER_URL)
    try:  # read from here on: ready means subscribed (unless the broker is down)
        last = await broker.last_id()
    except broker.errors:
        last = None
    reader = asyncio.create_task(pump(last), name="broker-pump")
    try:
        yield
    finally:
        while not reader.done():  # redis-py can swallow a cancellation: ask until it ends
            reader.cancel()
            await asyncio.wait([reader], timeout=0.1)
        await broker.close()


app = FastAPI(title="wslab 05: scaling", lifespan=lifespan)


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("index.html"))


@app.get("/page.js")
async def script() -> FileResponse:
    return FileResponse(Path(__file__).with_name("page.js"))


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return {
        "instance": INSTANCE,
        "broker": BROKER_URL.partition("://")[0],
        "clients": len(hub.connections),
        "peak_queue": hub.peak_queue,
        "dropped": hub.dropped,
    }


@app.websocket("/ws")
async def room(websocket: WebSocket, last_id: str | None = None) -> None:
    await websocket.accept()
    conn = Connection(websocket)
    hub.connections.add(conn)  # from now on live events queue up for this client
    silence = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT
    welcome = {"type": "welcome", "instance": INSTANCE, "heartbeat": silence, "peers": PEERS}
    try:
        await websocket.send_json(welcome)
        await replay(conn, last_id)
        jobs = [conn.sender(), receiver(conn), heartbeat(conn), conn.done.wait()]
        tasks = [asyncio.create_task(job) for job in jobs]
        finished, running = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in running:
            task.cancel()
        await asyncio.wait(tasks)
        for task in finished:
            task.result()  # an unexpected error is raised here, and logged by uvicorn
    except WebSocketDisconnect:
        pass  # the client left during the welcome or the replay
    finally:
        hub.connections.discard(conn)
    if conn.close_code is not None:  # bounded for a peer that does not read or answer (P36, P37)
        await close(websocket, conn.close_code, conn.close_reason, CLOSE_TIMEOUT)


async def replay(conn: Connection, last_id: str | None) -> None:
    """Send what was published after ``last_id`` (a reconnecting client's resume point)."""
    if last_id is None:
        return
    if not EVENT_ID.match(last_id):
        return await conn.websocket.send_json({"type": "error", "error": "bad last_id"})
    try:
        missed = await broker.history(last_id)
    except broker.errors:
        return await conn.websocket.send_json({"type": "error", "error": "cannot replay now"})
    for event_id, event in missed:
        await conn.websocket.send_json({**event, "id": event_id})
        conn.sent = id_key(event_id)


async def receiver(conn: Connection) -> None:
    """Read the client's messages, enforcing the heartbeat, size and rate limits."""
    bucket = TokenBucket(RATE, BURST)
    while True:
        try:
            async with asyncio.timeout(HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT):
                message = await conn.websocket.receive()
        except TimeoutError:  # not even a pong: a dead or half-open peer (P26)
            return conn.finish(1011, "heartbeat timeout")
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            return conn.finish(1003, "text frames only")
        if len(text.encode()) > MAX_MESSAGE_BYTES:  # P27
            return conn.finish(1009, f"message over {MAX_MESSAGE_BYTES} bytes")
        if not bucket.take():  # P32
            return conn.finish(1008, f"rate limit: {RATE:g} messages/s")
        await handle(conn, text)


async def handle(conn: Connection, text: str) -> None:
    try:
        message = json.loads(text)
        kind = message.get("type")
    except (ValueError, AttributeError):
        kind = None
    if kind == "say" and isinstance(message.get("text"), str):
        event = {"type": "message", "text": message["text"], "instance": INSTANCE}
        try:
            await broker.publish(event)
        except broker.errors:
            tell(conn, {"type": "error", "error": "broker down: not sent"})
    elif kind != "pong":
        tell(conn, {"type": "error", "error": 'send {"type": "say", "text": "..."}'})


def tell(conn: Connection, event: Event) -> None:
    """Queue ``event`` for this client only (an error, a ping): its sender sends it."""
    hub.offer(conn, (None, json.dumps(event)))


async def heartbeat(conn: Connection) -> None:
    """An application ping that browsers can answer (they cannot send protocol pings)."""
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL)
        tell(conn, {"type": "ping", "t": time.time()})
