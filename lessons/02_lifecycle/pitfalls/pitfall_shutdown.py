"""P33, broken: SIGTERM while one client has stopped reading a large snapshot."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
SNAPSHOT = "x" * 8_000_000  # a large initial state, e.g. a map or a data set
SERVER_OPTIONS: dict = {"timeout_graceful_shutdown": None}  # uvicorn's default


@app.websocket("/ws/snapshot")
async def snapshot(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        await websocket.send_text(SNAPSHOT)
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, **SERVER_OPTIONS)
