"""A reconnecting room client: backoff with jitter, reset on success, resume by last id.

Run it against one or more instances; it prints every event as a JSON line::

    python client.py ws://127.0.0.1:8001/ws ws://127.0.0.1:8002/ws
"""

import asyncio
import json
import random
import sys
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


class RoomClient:
    """Stay connected to one of ``urls``: after a failure, wait, then try the next one."""

    def __init__(self, urls: list[str], *, base: float = 0.5, cap: float = 15.0) -> None:
        self.urls = urls
        self.base = base
        self.cap = cap
        self.attempt = 0
        self.last_id: str | None = None
        self.events: list[dict[str, Any]] = []  # every event received, in order
        self.closes: list[int | None] = []  # the close code of every lost connection
        self.connected = asyncio.Event()  # set while connected (after the welcome)
        self.received = asyncio.Condition()

    def delay(self) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (P30)."""
        delay = random.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1
        return delay

    def url(self) -> str:
        url = self.urls[len(self.closes) % len(self.urls)]
        return f"{url}?last_id={quote(self.last_id)}" if self.last_id else url

    async def run(self) -> None:
        """Connect, read, reconnect: until cancelled."""
        while True:
            try:
                async with connect(self.url(), open_timeout=5) as ws:
                    async for data in ws:
                        await self.on_message(ws, json.loads(data))
                self.closes.append(ws.close_code)
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else 1006)
            except (OSError, InvalidHandshake, TimeoutError):
                self.closes.append(None)  # could not connect at all
            self.connected.clear()
            await asyncio.sleep(self.delay())

    async def on_message(self, ws: Any, event: dict[str, Any]) -> None:
        if event.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            return
        if event.get("type") == "welcome":
            self.attempt = 0  # reset on success
            self.connected.set()
        if "id" in event:
            self.last_id = event["id"]
        async with self.received:
            self.events.append(event)
            self.received.notify_all()
        print(json.dumps(event), flush=True)

    def texts(self) -> list[str]:
        return [e["text"] for e in self.events if e.get("type") == "message"]

    async def wait_for_texts(self, count: int, timeout: float = 5.0) -> list[str]:
        """The texts of the first ``count`` messages, once that many have arrived."""
        async with asyncio.timeout(timeout), self.received:
            await self.received.wait_for(lambda: len(self.texts()) >= count)
        return self.texts()[:count]


if __name__ == "__main__":
    asyncio.run(RoomClient(sys.argv[1:] or ["ws://127.0.0.1:8000/ws"]).run())
