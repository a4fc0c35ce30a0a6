"""P27, fixed: a client that sends a huge message."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

MAX_MESSAGE_BYTES = 4096  # and run it with: uvicorn fix_no_size_limit:app --ws-max-size 65536
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
