"""Manager step 2: a dict keyed by user. Personal messages (``@bob hi``) become possible."""

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

    async def send_personal_message(self, message: str, user: str) -> bool:
        websocket = self.active_connections.get(user)
        if websocket is None:
            return False
        await websocket.send_text(message)
        return True

    async def broadcast(self, message: str) -> None:
        for connection in list(self.active_connections.values()):
            await connection.send_text(message)


manager = ConnectionManager()


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, user: str) -> None:
    await manager.connect(websocket, user)
    try:
        while True:
            text = await websocket.receive_text()
            to, _, whisper = text.removeprefix("@").partition(" ")
            if not text.startswith("@"):
                await manager.broadcast(f"{user}: {text}")
            elif not await manager.send_personal_message(f"{user} (to you): {whisper}", to):
                await websocket.send_text(f"nobody called {to!r}")
    except WebSocketDisconnect:
        manager.disconnect(websocket, user)
        await manager.broadcast(f"{user} left")
