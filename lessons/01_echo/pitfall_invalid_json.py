"""P02, broken: one malformed JSON message kills the connection.

``receive_json()`` raises ``json.JSONDecodeError``; nothing catches it.
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def echo_json(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        value = await websocket.receive_json()
        await websocket.send_json({"echo": value})
