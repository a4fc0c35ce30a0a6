"""P05, broken: a doubling handler meets a bad message, then a client that leaves."""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def double(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        try:
            number = int(await websocket.receive_text())
            await websocket.send_text(str(2 * number))
        except:  # noqa: E722  "one bad message must not kill the connection"
            continue
