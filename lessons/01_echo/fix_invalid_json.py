"""P02, fixed: parse defensively and answer bad input with an error event.

The connection survives; the client sees what was wrong and can send again.
"""

import json

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def echo_json(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                await websocket.send_json({"type": "error", "error": f"invalid JSON: {exc}"})
                continue
            await websocket.send_json({"echo": value})
    except WebSocketDisconnect:
        pass
