"""P27, broken: no message size limit, so one client can make the server hold 16 MiB.

uvicorn accepts messages up to ``--ws-max-size`` (16 MiB by default) and the app reads
whatever arrives. A few clients sending big messages exhaust the server's memory.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws")
async def size(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"bytes": len(text.encode())})
    except WebSocketDisconnect:
        pass
