"""P04, fixed: catch ``WebSocketDisconnect`` and clean up in ``finally``.

A client leaving is normal, not an error: nothing is logged, and the cleanup always runs,
whatever ended the handler.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
CONNECTED: set[str] = set()


@app.get("/connected")
async def connected() -> list[str]:
    return sorted(CONNECTED)


@app.websocket("/ws/{client_id}")
async def echo(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    CONNECTED.add(client_id)
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"Echo: {text}")
    except WebSocketDisconnect:
        pass  # the client left: a normal end
    finally:
        CONNECTED.discard(client_id)  # runs on every way out
