"""P32, broken: one client flooding the room."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            for client in list(clients):
                try:
                    await client.send_text(text)
                except (WebSocketDisconnect, RuntimeError):
                    pass  # that client is leaving: its own handler removes it
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
