"""P05, fixed: catch only what you expect, where you expect it.

A bad message gets an error reply; a disconnect ends the handler; anything else is a bug
that propagates and is logged. Cancellation is never caught.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def double(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            try:
                number = int(text)
            except ValueError:
                await websocket.send_text(f"error: not an integer: {text!r}")
                continue
            await websocket.send_text(str(2 * number))
    except WebSocketDisconnect:
        pass
