"""P33, fixed: give uvicorn a graceful-shutdown timeout.

SIGTERM still closes every WebSocket with 1012 at once; after ``timeout_graceful_shutdown``
seconds uvicorn cancels the handlers that are still running (the blocked send) and exits.
(``uvicorn --timeout-graceful-shutdown 2`` on the command line.)
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
SNAPSHOT = "x" * 8_000_000  # a large initial state, e.g. a map or a data set
SERVER_OPTIONS: dict = {"timeout_graceful_shutdown": 2}


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
