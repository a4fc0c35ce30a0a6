"""P05, fixed: a doubling handler meets a bad message, then a client that leaves."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def double(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        try:
            number = int(await websocket.receive_text())
            await websocket.send_text(str(2 * number))
        except ValueError:  # only the error a bad message raises
            await websocket.send_text("error: not an integer")
        except WebSocketDisconnect:
            return
