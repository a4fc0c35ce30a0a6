"""P27, fixed: an application limit (close 1009) under a lower ``--ws-max-size``.

Run it with ``uvicorn fix_no_size_limit:app --ws-max-size 65536``: uvicorn then refuses a
message over 64 KiB itself (close 1009) before buffering more, and the app closes with
1009 anything over its own, smaller, ``MAX_MESSAGE_BYTES``.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

MAX_MESSAGE_BYTES = 4096
app = FastAPI()


@app.websocket("/ws")
async def size(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                await websocket.close(1009, f"message over {MAX_MESSAGE_BYTES} bytes")
                return
            await websocket.send_json({"bytes": len(text.encode())})
    except WebSocketDisconnect:
        pass
