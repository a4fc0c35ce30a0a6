"""P14, fixed: connections keyed by user id, and a user with two tabs."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: dict[str, set[WebSocket]] = {}

    async def connect(self, websocket: WebSocket, user: str) -> None:
        await websocket.accept()
        self.active_connections.setdefault(user, set()).add(websocket)

    def disconnect(self, websocket: WebSocket, user: str) -> None:
        mine = self.active_connections.get(user, set())
        mine.discard(websocket)
        if not mine:
            self.active_connections.pop(user, None)

    def sockets(self) -> list[WebSocket]:
        return [ws for tabs in self.active_connections.values() for ws in tabs]

    async def broadcast(self, message: str) -> None:
        for connection in self.sockets():
            await connection.send_text(message)


manager = ConnectionManager()


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await manager.connect(websocket, user)
    try:
        while True:
            text = await websocket.receive_text()
            await manager.broadcast(f"{user}: {text}")
    except WebSocketDisconnect:
        manager.disconnect(websocket, user)


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"users": len(manager.active_connections), "connections": len(manager.sockets())}
