"""Manager step 4: the production manager. Nobody waits for a slow client.

Each connection gets a bounded outbox and one sender task; ``publish`` only queues, so a
client that stops reading cannot stall the room. When its outbox is full it is dropped:
closed with 1013 (giving up after a deadline: a stalled peer may never take the close
frame) and counted. ``app.py`` holds the very same ``Hub``; a test keeps them identical.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

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

app = FastAPI()
hub = Hub()


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, user: str) -> None:
    try:
        async with hub.connect(websocket, user) as client:
            members = hub.join(client, room)
            hub.publish(room, {"type": "join", "user": user, "members": members})
            while (message := await websocket.receive())["type"] != "websocket.disconnect":
                if message.get("text") is None:
                    hub.send(client, {"type": "error", "error": "send text frames"})
                    continue
                event = {"type": "message", "user": user, "text": message["text"]}
                hub.publish(room, event, exclude=client)
    finally:
        members = len(hub.rooms.get(room, ()))
        hub.publish(room, {"type": "leave", "user": user, "members": members})


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return hub.stats()
