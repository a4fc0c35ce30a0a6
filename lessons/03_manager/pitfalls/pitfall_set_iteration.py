"""P12, broken: a broadcast that removes from the set it iterates."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.connections: dict[str, set[WebSocket]] = {}

    async def connect(self, room: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.connections.setdefault(room, set()).add(websocket)

    def disconnect(self, room: str, websocket: WebSocket) -> None:
        self.connections.get(room, set()).discard(websocket)

    async def broadcast(self, room: str, message: str) -> None:
        for websocket in self.connections.get(room, set()):
            try:
                await websocket.send_text(message)
            except Exception:
                self.disconnect(room, websocket)


manager = ConnectionManager()


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, user: str) -> None:
    await manager.connect(room, websocket)
    try:
        while (text := await websocket.receive_text()) != "bye":
            await manager.broadcast(room, f"{user}: {text}")
        await websocket.close()
    except WebSocketDisconnect:
        manager.disconnect(room, websocket)
