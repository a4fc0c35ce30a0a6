"""P02, broken: a JSON handler meets a message that is not JSON."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def echo_json(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            value = await websocket.receive_json()
            await websocket.send_json({"echo": value})
    except WebSocketDisconnect:
        pass
