"""P26, broken: a client that vanishes without a close frame (a half-open peer)."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    print(f"joined: {len(clients)} clients", flush=True)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
        print(f"left: {len(clients)} clients", flush=True)
