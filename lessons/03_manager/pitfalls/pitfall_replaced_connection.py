"""P14, broken: connections keyed by user id, and a user with two tabs."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: dict[str, WebSocket] = {}

    async def connect(self, websocket: WebSocket, user: str) -> None:
        await websocket.accept()
        self.active_connections[user] = websocket

    def disconnect(self, websocket: WebSocket, user: str) -> None:
        self.active_connections.pop(user, None)

    def sockets(self) -> list[WebSocket]:
        return list(self.active_connections.values())

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
