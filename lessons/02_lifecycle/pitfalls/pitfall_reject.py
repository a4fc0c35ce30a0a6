"""P09, broken: a room endpoint refuses a connection to a room that does not exist."""

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect

app = FastAPI()
ROOMS = {"lobby", "kitchen"}


@app.websocket("/ws/rooms/{room}")
async def join(websocket: WebSocket, room: str, name: str = Query(min_length=1)) -> None:
    if room not in ROOMS:
        await websocket.close(code=1008, reason=f"no room {room!r}")
        return
    await websocket.accept()
    try:
        await websocket.send_text(f"{name} joined {room}")
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
