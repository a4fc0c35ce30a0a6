"""Broadcast benchmark: the naive loop, asyncio.gather and per-connection queues, side by side.

The notebook connects N clients to ``/ws``. A client connecting to ``/ws?stall=1`` is about
to stop reading: the server first fills its buffers (the backlog an idle reader builds up),
so the next send to it blocks, as it would after a few MB of a real feed. Then
``POST /run?strategy=naive|gather|queue&count=M&deadline=S`` broadcasts M time-stamped
messages, gives up after S seconds (a broadcast still running then has stalled), and
answers how far it got.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect

QUEUE_SIZE = 64  # per subscriber, for the queue strategy
CHUNK = b"\0" * 65_536

app = FastAPI()


class Subscriber:
    """A connection with the queue and sender task the ``queue`` strategy uses."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.sender = asyncio.create_task(self.send_forever())

    async def send_forever(self) -> None:
        with suppress(WebSocketDisconnect):
            while True:
                await self.websocket.send_text(await self.queue.get())

    async def drop(self) -> None:
        self.sender.cancel()
        await asyncio.wait([self.sender])
        with suppress(TimeoutError, WebSocketDisconnect):
            async with asyncio.timeout(1.0):
                await self.websocket.close(1013, "slow consumer")


subscribers: dict[WebSocket, Subscriber] = {}
fills: set[asyncio.Task[int]] = set()
closing: set[asyncio.Task[None]] = set()
counts = {"dropped": 0, "filled": 0}


async def naive(message: str) -> None:
    for websocket in list(subscribers):
        with suppress(WebSocketDisconnect):
            await websocket.send_text(message)


async def gather(message: str) -> None:
    sends = (websocket.send_text(message) for websocket in list(subscribers))
    await asyncio.gather(*sends, return_exceptions=True)


async def queued(message: str) -> None:
    for websocket, subscriber in list(subscribers.items()):
        try:
            subscriber.queue.put_nowait(message)
        except asyncio.QueueFull:
            del subscribers[websocket]
            counts["dropped"] += 1
            closing.add(task := asyncio.create_task(subscriber.drop()))
            task.add_done_callback(closing.discard)
    await asyncio.sleep(0)  # the broadcaster yields once per message, so the senders run


STRATEGIES: dict[str, Callable[[str], Awaitable[None]]] = {
    "naive": naive,
    "gather": gather,
    "queue": queued,
}


async def fill(websocket: WebSocket) -> int:
    """Send 64 KiB chunks until one cannot leave within 0.2 s; the bytes that fitted."""
    sent = 0
    with suppress(TimeoutError, WebSocketDisconnect):
        while True:
            async with asyncio.timeout(0.2):
                await websocket.send_bytes(CHUNK)
            sent += len(CHUNK)
    counts["filled"] = sent
    return sent


@app.websocket("/ws")
async def subscribe(websocket: WebSocket, stall: bool = False) -> None:
    await websocket.accept()
    subscriber = subscribers[websocket] = Subscriber(websocket)
    if stall:
        fills.add(task := asyncio.create_task(fill(websocket)))
        task.add_done_callback(fills.discard)
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # subscribers have nothing to say
    finally:
        subscribers.pop(websocket, None)
        subscriber.sender.cancel()


@app.post("/run")
async def run(
    strategy: Literal["naive", "gather", "queue"],
    count: Annotated[int, Query(ge=1, le=100_000)] = 100,
    deadline: Annotated[float, Query(gt=0, le=60)] = 2.0,
) -> dict[str, Any]:
    """Broadcast ``count`` messages; how many went out before the deadline, and how fast."""
    if fills:
        await asyncio.wait(set(fills))
    broadcast, sent = STRATEGIES[strategy], 0
    dropped_before, started = counts["dropped"], time.time()
    with suppress(TimeoutError):
        async with asyncio.timeout(deadline):
            for i in range(count):
                await broadcast(json.dumps({"i": i, "t": time.time()}))
                sent += 1
    return {
        "strategy": strategy,
        "subscribers": len(subscribers),
        "sent": sent,
        "started": started,
        "seconds": time.time() - started,
        "dropped": counts["dropped"] - dropped_before,
        "filled": counts["filled"],
    }
