"""P03, broken: ``message["text"]`` on a message without that field raises KeyError."""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive_json()
        await websocket.send_json({"type": "said", "text": message["text"]})
