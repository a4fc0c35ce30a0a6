"""Echo: from HTTP request/response to a persistent two-way connection.

Run it: ``wslab serve 01`` (or ``uvicorn app:app`` in this folder) and open the page.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse

HERE = Path(__file__).parent
PERIOD = 0.02  # seconds between two messages of the feed
MAX_COUNT = 1000  # messages one request may ask for
Message = dict[str, int | float]

app = FastAPI(title="wslab 01: echo")


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(HERE / "index.html")


@app.get("/page.js")
async def page_script() -> FileResponse:
    return FileResponse(HERE / "page.js")


@app.get("/http/echo")
async def http_echo(text: str) -> dict[str, str]:
    """The same echo as one HTTP request and response, for comparison."""
    return {"reply": f"Echo: {text}"}


@app.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    """Reply ``Echo: <text>`` to every text message."""
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"Echo: {text}")
    except WebSocketDisconnect:
        pass  # the client left: nothing to clean up here


@app.websocket("/ws/json")
async def echo_json(websocket: WebSocket) -> None:
    """Reply ``{"echo": <value>}`` to every JSON message; invalid JSON gets an error event."""
    await websocket.accept()
    try:
        while True:
            try:
                value = await websocket.receive_json()
            except json.JSONDecodeError as exc:
                await websocket.send_json({"type": "error", "error": f"invalid JSON: {exc}"})
                continue
            await websocket.send_json({"echo": value})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/exact")
async def echo_exact(websocket: WebSocket) -> None:
    """Send back every message unchanged: text as text, bytes as bytes. Conformance tools
    (the Autobahn test suite) and command-line clients expect this echo."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"])
            else:
                await websocket.send_text(message["text"])
    except WebSocketDisconnect:
        pass


# The feed: message n falls due n * PERIOD seconds after 1970, so whoever receives it can
# tell how late it came. Four ways to read it follow; the notebook compares them.


async def reachable(n: int) -> int:
    """``n``, unless message n falls due too far in the future to wait for (HTTP 400)."""
    if n * PERIOD > time.time() + MAX_COUNT * PERIOD:
        raise HTTPException(400, "that message falls due too far in the future")
    return n


def feed_message(n: int) -> Message:
    """Message ``n`` of the feed: its number, and when it falls due (seconds since 1970)."""
    return {"n": n, "due": round(n * PERIOD, 6)}


async def when_due(n: int) -> Message:
    """Message ``n``, once it has fallen due."""
    await asyncio.sleep(max(0.0, n * PERIOD - time.time()))
    return feed_message(n)


@app.get("/feed/wait")
async def feed_wait(n: Annotated[int, Depends(reachable)]) -> Message:
    """HTTP request/response: ask for message n, get the answer when it falls due."""
    return await when_due(n)


@app.get("/feed/poll")
async def feed_poll(after: int) -> list[Message]:
    """Polling: every message due since message ``after``, at once (often none)."""
    newest = int(time.time() / PERIOD)
    first = max(after + 1, newest - MAX_COUNT + 1)
    return [feed_message(n) for n in range(first, newest + 1)]


@app.websocket("/ws/feed")
async def feed_websocket(
    websocket: WebSocket,
    n: Annotated[int, Depends(reachable)],
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = 100,
) -> None:
    """One WebSocket: the server sends each message as it falls due, then closes."""
    await websocket.accept()
    try:
        for number in range(n, n + count):
            await websocket.send_json(await when_due(number))
        await websocket.close(1000, "that was the last one")
    except WebSocketDisconnect:
        pass


@app.get("/sse/feed", response_class=EventSourceResponse)
async def feed_events(
    n: Annotated[int, Depends(reachable)],
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = 100,
) -> AsyncIterator[Message]:
    """Server-Sent Events: one long HTTP response, one ``data:`` line per message."""
    for number in range(n, n + count):
        yield await when_due(number)
