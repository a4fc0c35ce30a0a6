"""P01, fixed: receive any frame, branch on its type, refuse binary with close 1003.

1003 means "unsupported data": the client learns why, instead of a dropped connection.
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is None:
            await websocket.close(code=1003, reason="this endpoint takes text frames only")
            return
        await websocket.send_text(f"Echo: {message['text']}")
