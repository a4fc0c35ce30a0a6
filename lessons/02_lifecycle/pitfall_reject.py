"""P09, broken: closing before ``accept()`` to refuse a connection.

TestClient reports this as a close with code 1008 and the reason. A real client gets no
close frame at all: uvicorn answers the handshake with a bare HTTP 403, reason lost, the
same answer as for a path that does not exist. FastAPI's default for invalid path or
query parameters does the same.
"""

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
