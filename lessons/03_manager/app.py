"""Connection managers: a chat with rooms on the production Hub, validated events, whispers.

Run it: ``python app.py`` (or ``wslab serve 03``), then open http://127.0.0.1:8000/.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import uvicorn
from fastapi import APIRouter, FastAPI, Query, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

QUEUE_SIZE = 256  # messages a client may fall behind before the hub drops it
CLOSE_TIMEOUT = 1.0  # seconds a dropped client's close may take
SLOW_CONSUMER = 1013  # the close code for a dropped client: "try again later"
HERE = Path(__file__).parent


class Client:
    """One connection: its user and room, a bounded outbox, and the task that drains it."""

    def __init__(self, websocket: WebSocket, user: str, room: str) -> None:
        self.websocket, self.user, self.room = websocket, user, room
        self.outbox: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.writer = asyncio.create_task(self.write())
        self.session = anyio.CancelScope()  # cancelled to end this client's handler

    async def write(self) -> None:
        """The only code that writes to this socket: one message at a time, in order."""
        with suppress(WebSocketDisconnect):
            while True:
                await self.websocket.send_text(await self.outbox.get())


class Hub:
    """Every connection, by room. ``send`` and ``publish`` queue and return at once."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Client]] = {}
        self.dropped = 0
        self.closing: set[asyncio.Task[None]] = set()  # strong references to close tasks

    @asynccontextmanager
    async def connect(self, websocket: WebSocket, user: str, room: str) -> AsyncIterator[Client]:
        """Accept and join ``room`` for the block; leave however it ends, or when dropped."""
        await websocket.accept()
        client = Client(websocket, user, room)
        self.rooms.setdefault(room, set()).add(client)
        try:
            with client.session:
                yield client
        finally:
            self.leave(client)
            client.writer.cancel()

    def leave(self, client: Client) -> None:
        members = self.rooms.get(client.room, set())
        members.discard(client)
        if not members:
            self.rooms.pop(client.room, None)

    def members(self, room: str) -> list[str]:
        return sorted(client.user for client in self.rooms.get(room, ()))

    def send(self, client: Client, event: dict[str, Any]) -> None:
        """Queue ``event`` for one client; a client whose outbox is full is dropped."""
        if client in self.rooms.get(client.room, ()):  # not gone, not dropped already
            try:
                client.outbox.put_nowait(json.dumps(event))
            except asyncio.QueueFull:
                self.drop(client)

    def publish(self, room: str, event: dict[str, Any], exclude: Client | None = None) -> None:
        for client in list(self.rooms.get(room, ())):  # a snapshot: a drop changes the room
            if client is not exclude:
                self.send(client, event)

    def drop(self, client: Client) -> None:
        self.dropped += 1
        self.leave(client)
        task = asyncio.create_task(self.close_slow(client))
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def close_slow(self, client: Client) -> None:
        client.writer.cancel()
        await asyncio.wait([client.writer])
        with suppress(TimeoutError, WebSocketDisconnect):  # the close waits behind the backlog
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await client.websocket.close(SLOW_CONSUMER, "slow consumer: too far behind")
        client.session.cancel()  # end its handler

    def stats(self) -> dict[str, Any]:
        rooms = {room: len(members) for room, members in sorted(self.rooms.items())}
        return {"clients": sum(rooms.values()), "rooms": rooms, "dropped": self.dropped}


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]


class Say(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a client may not set "user" or "room"
    type: Literal["message"]
    text: str = Field(min_length=1, max_length=1000)


class Whisper(Say):
    type: Literal["whisper"]  # type: ignore[assignment]
    to: Name


Event = TypeAdapter(Annotated[Say | Whisper, Field(discriminator="type")])
hub = Hub()
router = APIRouter()  # the chat's routes: a bigger app keeps each group in its own module


@router.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: Name, user: Annotated[Name, Query()]) -> None:
    async with hub.connect(websocket, user, room) as client:
        hub.publish(room, {"type": "join", "user": user, "members": hub.members(room)})
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            try:
                event = Event.validate_json(message.get("text") or "")
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False, include_input=False)
                hub.send(client, {"type": "error", "error": errors})
                continue
            said = {"type": event.type, "user": user, "text": event.text}
            if not isinstance(event, Whisper):
                hub.publish(room, said, exclude=client)
                continue
            targets = [other for other in hub.rooms.get(room, ()) if other.user == event.to]
            for target in targets:
                hub.send(target, said | {"to": event.to})
            if not targets:
                hub.send(client, {"type": "error", "error": f"nobody called {event.to!r}"})
    hub.publish(room, {"type": "leave", "user": user, "members": hub.members(room)})


@router.get("/stats")
async def stats() -> dict[str, Any]:
    return hub.stats()


app = FastAPI()
app.include_router(router)  # the router's routes, served by the app


@app.exception_handler(WebSocketRequestValidationError)
async def refuse(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
    detail = jsonable_encoder(exc.errors())  # a bad room or user name: HTTP 422, and why
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=422))


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(HERE / "index.html")


if __name__ == "__main__":
    uvicorn.run(app)
