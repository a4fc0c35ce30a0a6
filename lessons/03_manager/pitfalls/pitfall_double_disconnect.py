"""P10, broken: a socket removed from the list twice."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in list(self.active_connections):
            try:
                await connection.send_text(message)
            except WebSocketDisconnect:
                self.disconnect(connection)


manager = ConnectionManager()


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await manager.connect(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await manager.broadcast(f"{user}: {text}")
    except WebSocketDisconnect:
        await manager.broadcast(f"{user} left")
        manager.disconnect(websocket)


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"clients": len(manager.active_connections)}
