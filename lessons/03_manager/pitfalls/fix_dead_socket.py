"""P11, fixed: one dead socket in the broadcast loop."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected

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
        dead = []
        for connection in self.active_connections:
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, WebSocketDisconnected):  # gone, or closed by us
                dead.append(connection)
        for connection in dead:
            self.disconnect(connection)


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
