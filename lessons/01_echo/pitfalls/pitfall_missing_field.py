"""P03, broken: a handler reads a field the message does not have."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive_json()
            await websocket.send_json({"type": "said", "text": message["text"]})
    except WebSocketDisconnect:
        pass
