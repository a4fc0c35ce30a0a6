"""P13, fixed: a bounded queue and one sender task per client; slow clients are dropped.

``broadcast`` only queues (``put_nowait``), so it never waits for anybody. A client whose
queue is full has stopped reading: its sender is cancelled, it is closed with 1013 (try
again later) and counted. That close waits behind the unread bytes, so it gets a deadline.
(The production ``Hub`` in ``app.py`` also ends the dropped client's handler.)
"""

import asyncio
from contextlib import suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class Subscriber:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=32)
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


clients: dict[WebSocket, Subscriber] = {}
dropped = 0
closing: set[asyncio.Task[None]] = set()


def broadcast(message: str) -> None:
    global dropped
    for websocket, subscriber in list(clients.items()):
        try:
            subscriber.queue.put_nowait(message)
        except asyncio.QueueFull:
            del clients[websocket]
            dropped += 1
            closing.add(task := asyncio.create_task(subscriber.drop()))
            task.add_done_callback(closing.discard)


@app.websocket("/ws")
async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    subscriber = clients[websocket] = Subscriber(websocket)
    try:
        while True:
            broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        clients.pop(websocket, None)
        subscriber.sender.cancel()


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"clients": len(clients), "dropped": dropped}
