"""Manager step 3: rooms of sets. A message stays in its room; the sender is skipped."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.rooms: dict[str, set[WebSocket]] = {}

    async def connect(self, websocket: WebSocket, room: str) -> int:
        await websocket.accept()
        self.rooms.setdefault(room, set()).add(websocket)
        return len(self.rooms[room])

    def disconnect(self, websocket: WebSocket, room: str) -> int:
        members = self.rooms.get(room, set())
        members.discard(websocket)
        if not members:
            self.rooms.pop(room, None)
        return len(members)

    async def broadcast(self, room: str, message: str, exclude: WebSocket | None = None) -> None:
        dead = []
        for connection in list(self.rooms.get(room, ())):
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, WebSocketDisconnected):
                dead.append(connection)
        for connection in dead:
            self.disconnect(connection, room)


manager = ConnectionManager()


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, user: str) -> None:
    members = await manager.connect(websocket, room)
    await manager.broadcast(room, f"{user} joined ({members} here)")
    try:
        while True:
            text = await websocket.receive_text()
            await manager.broadcast(room, f"{user}: {text}", exclude=websocket)
    except WebSocketDisconnect:
        members = manager.disconnect(websocket, room)
        await manager.broadcast(room, f"{user} left ({members} here)")
