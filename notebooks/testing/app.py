"""A small chat to test: one room, a page, and a user name required before accept."""

from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnected

app = FastAPI(title="a chat to test")
room: set[WebSocket] = set()


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("index.html"))


async def broadcast(text: str) -> None:
    """Send ``text`` to everyone in the room; a socket that fails is dropped, not fatal."""
    for websocket in list(room):
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, WebSocketDisconnected):
            room.discard(websocket)


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str = "") -> None:
    if not user.strip():
        await websocket.close(code=1008, reason="a user name is required")
        return
    await websocket.accept()
    room.add(websocket)
    await broadcast(f"{user} joined")
    try:
        while (text := await websocket.receive_text()) != "bye":
            await broadcast(f"{user}: {text}")
        await websocket.close()  # leaves without unregistering: the next broadcast drops it
    except WebSocketDisconnect:
        room.discard(websocket)
