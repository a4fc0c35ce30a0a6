"""P11, broken: one dead socket in the broadcast loop."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.active_connections:
            self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()


@app.websocket("/ws")
async def chat(websocket: WebSocket, user: str) -> None:
    await manager.connect(websocket)
    try:
        while (text := await websocket.receive_text()) != "bye":
            await manager.broadcast(f"{user}: {text}")
        await websocket.close()
    except WebSocketDisconnect:
        manager.disconnect(websocket)
