"""P27, broken: a client that sends a huge message."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def size(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"bytes": len(text.encode())})
    except WebSocketDisconnect:
        pass
