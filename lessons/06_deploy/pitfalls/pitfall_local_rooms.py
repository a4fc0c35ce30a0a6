"""P44, broken: rooms kept in each instance's memory behind a round-robin proxy."""

import contextlib
import os
from collections import defaultdict
from collections.abc import AsyncIterator

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

BROKER_URL = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
INSTANCE = os.environ.get("INSTANCE", str(os.getpid()))
rooms: dict[str, set[WebSocket]] = defaultdict(set)


async def deliver(message: dict[str, str]) -> None:
    """Send ``message["data"]`` to this process's clients in room ``message["channel"]``."""
    for websocket in list(rooms[message["channel"]]):
        with contextlib.suppress(Exception):
            await websocket.send_text(message["data"])


async def publish(room: str, text: str) -> None:
    await deliver({"channel": room, "data": text})


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    await websocket.send_text(f"welcome to {room} on instance {INSTANCE}")
    rooms[room].add(websocket)
    try:
        while True:
            await publish(room, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        rooms[room].discard(websocket)
