"""The same chat with one line missing: a dead socket breaks the broadcast (P11)."""

from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

app = FastAPI(title="a chat to test")
room: set[WebSocket] = set()


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("index.html"))


async def broadcast(text: str) -> None:
    """Send ``text`` to everyone in the room."""
    for websocket in list(room):
        await websocket.send_text(text)


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
