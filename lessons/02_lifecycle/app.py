"""The life of a connection: handshake, disconnects, close codes, and never blocking the loop.

Run it: ``wslab serve 02`` (or ``uvicorn app:app`` in this folder) and open the page.
"""

import asyncio
import pathlib
import time
from collections import deque

from fastapi import FastAPI, HTTPException, Path, Query, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel

app = FastAPI(title="wslab 02: lifecycle")

STARTED = time.monotonic()
EVENTS: deque[dict] = deque(maxlen=1000)  # the lifecycle timeline: the last 1,000, oldest first
CLIENTS: dict[str, asyncio.Queue[str]] = {}  # connected client id -> its outbox
app.state.events = EVENTS
app.state.clients = CLIENTS

# Codes a server may put in a close frame (1005, 1006 and 1015 never travel on the wire).
SENDABLE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


def record(client_id: str, event: str, **details: object) -> None:
    """Append one event to the timeline, stamped with seconds since the app started."""
    EVENTS.append(
        {"t": round(time.monotonic() - STARTED, 3), "client": client_id, "event": event, **details}
    )


# --- the page: index.html and its script, page.js, beside this file
HERE = pathlib.Path(__file__).parent


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(HERE / "index.html")


@app.get("/page.js")
async def page_script() -> FileResponse:
    return FileResponse(HERE / "page.js")


@app.get("/events")
async def events(client: str | None = None) -> list[dict]:
    """The lifecycle timeline, optionally for one client id."""
    return [e for e in EVENTS if client is None or e["client"] == client]


@app.get("/clients")
async def clients() -> list[str]:
    return sorted(CLIENTS)


# --- rejecting a handshake: tell the client why, with an HTTP status
@app.exception_handler(WebSocketRequestValidationError)
async def invalid_parameters(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
    """Answer a handshake with invalid path/query parameters with HTTP 422 and the errors.

    FastAPI's default closes before accept(): a real client then gets a bare HTTP 403.
    """
    detail = jsonable_encoder(exc.errors())
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=422))


# --- server push: POST /notify/{client_id}
class Notification(BaseModel):
    text: str


@app.post("/notify/{client_id}")
async def notify(client_id: str, notification: Notification) -> dict:
    """Queue a message for a connected client; 404 when no such client is connected."""
    outbox = CLIENTS.get(client_id)
    if outbox is None:
        raise HTTPException(404, f"client {client_id!r} is not connected")
    outbox.put_nowait(notification.text)
    return {"queued_for": client_id}


# --- the WebSocket endpoint
@app.websocket("/ws/{client_id}")
async def lifecycle(
    websocket: WebSocket,
    client_id: str = Path(pattern=r"^[a-z0-9-]{1,20}$"),
    name: str = Query(min_length=1, max_length=30),
) -> None:
    """Echo, push notifications, and record every phase of the connection."""
    await websocket.accept()
    if client_id in CLIENTS:
        # After accept() a browser can read the code and reason; before, it sees nothing.
        record(client_id, "refused", code=4009)
        await websocket.close(4009, f"client id {client_id!r} is already connected")
        return
    outbox: asyncio.Queue[str] = asyncio.Queue()
    CLIENTS[client_id] = outbox
    record(client_id, "connected", name=name)
    try:
        await websocket.send_json({"type": "welcome", "client": client_id, "name": name})
        # Reader and writer run concurrently; when either ends, the other is cancelled.
        tasks = {
            asyncio.create_task(read_messages(websocket, client_id)),
            asyncio.create_task(write_notifications(websocket, client_id, outbox)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in done:
            task.result()  # re-raise an unexpected error instead of hiding it
    finally:
        del CLIENTS[client_id]


async def read_messages(websocket: WebSocket, client_id: str) -> None:
    """Echo text; ``/close CODE REASON`` makes the server close; binary is refused (1003)."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message["code"], message.get("reason"))
            text = message.get("text")
            if text is None:
                record(client_id, "closed by server", code=1003)
                await websocket.close(1003, "this endpoint takes text messages only")
                return
            record(client_id, "message", text=text)
            if text.startswith("/close"):
                if await close_on_request(websocket, client_id, text):
                    return
            else:
                await websocket.send_json({"type": "echo", "text": text})
    except WebSocketDisconnect as exc:
        record(client_id, "disconnected", code=exc.code, reason=exc.reason)


async def close_on_request(websocket: WebSocket, client_id: str, command: str) -> bool:
    """Handle ``/close CODE [REASON]``: True if the server closed the connection."""
    _, _, arguments = command.partition(" ")
    code_text, _, reason = arguments.partition(" ")
    code = int(code_text) if code_text.isdigit() else 0
    if code not in SENDABLE_CODES and not 3000 <= code <= 4999:
        await websocket.send_json({"type": "error", "error": f"cannot close with {code_text!r}"})
        return False
    if len(reason.encode()) > 123:  # a close frame's payload is at most 125 bytes
        await websocket.send_json({"type": "error", "error": "reason longer than 123 bytes"})
        return False
    record(client_id, "closed by server", code=code, reason=reason)
    await websocket.close(code, reason)
    return True


async def write_notifications(
    websocket: WebSocket, client_id: str, outbox: asyncio.Queue[str]
) -> None:
    """Send each queued notification; runs until cancelled or the send fails."""
    try:
        while True:
            text = await outbox.get()
            await websocket.send_json({"type": "notification", "text": text})
            record(client_id, "notified", text=text)
    except WebSocketDisconnect:
        record(client_id, "disconnected", code=1006, reason="send failed")
