"""P36, fixed: a slow client is dropped, and its connection is closed with a deadline."""

import asyncio
from contextlib import suppress

import anyio
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

CLOSE_TIMEOUT = 1.0  # seconds a dropped client's close may take

app = FastAPI()


class Subscriber:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.outbox: asyncio.Queue[str] = asyncio.Queue(32)
        self.writer = asyncio.create_task(self.write())
        self.session = anyio.CancelScope()  # cancelled to end this client's handler

    async def write(self) -> None:
        with suppress(WebSocketDisconnect):
            while True:
                await self.websocket.send_text(await self.outbox.get())

    async def drop(self) -> None:
        self.writer.cancel()
        with suppress(TimeoutError, WebSocketDisconnect):  # the close waits behind the backlog
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.websocket.close(1013, "slow consumer")
        self.session.cancel()


clients: set[Subscriber] = set()
dropping: set[asyncio.Task[None]] = set()  # strong references to the drop tasks


async def broadcast(message: str) -> None:
    for subscriber in list(clients):
        try:
            subscriber.outbox.put_nowait(message)
        except asyncio.QueueFull:  # it stopped reading: drop it
            clients.discard(subscriber)
            dropping.add(task := asyncio.create_task(subscriber.drop()))
            task.add_done_callback(dropping.discard)


@app.websocket("/ws")
async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    subscriber = Subscriber(websocket)
    clients.add(subscriber)
    try:
        with subscriber.session:
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


class BoundedClose(WebSocketsSansIOProtocol):
    """uvicorn-specific (seen on uvicorn 0.54 and 0.55): a subclass of its WebSocket protocol.
    ASGI gives an app no portable way to free a socket: its only end is a close frame, which
    waits behind the unread bytes; the abort must come from the server that owns the socket."""

    async def run_asgi(self) -> None:
        await super().run_asgi()  # the handler returned: its close gets CLOSE_TIMEOUT more
        self.loop.call_later(CLOSE_TIMEOUT, self.abort_if_open)

    def abort_if_open(self) -> None:
        if not self.disconnected:  # asyncio's abort() raises on a connection it has closed
            self.transport.abort()


if __name__ == "__main__":
    uvicorn.run(app, ws=BoundedClose)
