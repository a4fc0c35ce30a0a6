"""P13, fixed: a broadcast to a client that stopped reading."""

import asyncio
from contextlib import suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class Subscriber:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.outbox: asyncio.Queue[str] = asyncio.Queue(32)  # at most 32 messages behind
        self.writer = asyncio.create_task(self.write())

    async def send(self, message: str) -> None:
        with suppress(asyncio.QueueFull):  # never waits: a client 32 behind misses this one
            self.outbox.put_nowait(message)

    async def write(self) -> None:  # the only code that writes to this socket
        with suppress(WebSocketDisconnect):
            while True:
                await self.websocket.send_text(await self.outbox.get())


clients: set[Subscriber] = set()


async def broadcast(message: str) -> None:
    for subscriber in list(clients):
        with suppress(WebSocketDisconnect):
            await subscriber.send(message)


@app.websocket("/ws")
async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    subscriber = Subscriber(websocket)
    clients.add(subscriber)
    try:
        while True:
            await broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(subscriber)
        subscriber.writer.cancel()


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"clients": len(clients)}
