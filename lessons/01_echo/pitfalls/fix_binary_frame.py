"""P01, fixed: a text-only handler meets a binary frame."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                await websocket.close(1003, "this endpoint takes text frames only")
                return
            await websocket.send_text(f"Echo: {message['text']}")
    except WebSocketDisconnect:
        pass
