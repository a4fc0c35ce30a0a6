"""P02, fixed: a JSON handler meets a message that is not JSON."""

import json

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def echo_json(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            try:
                value = await websocket.receive_json()
            except json.JSONDecodeError as exc:
                await websocket.send_json({"type": "error", "error": f"invalid JSON: {exc}"})
                continue
            await websocket.send_json({"echo": value})
    except WebSocketDisconnect:
        pass
