"""P04, broken: no disconnect handling, so the cleanup after the loop never runs.

When the client leaves, ``receive_text()`` raises ``WebSocketDisconnect``. Nothing catches
it: the server does not crash, but uvicorn logs ``Exception in ASGI application`` with a
traceback for every ordinary disconnect, and the client id stays in ``CONNECTED`` forever.
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()
CONNECTED: set[str] = set()


@app.get("/connected")
async def connected() -> list[str]:
    return sorted(CONNECTED)


@app.websocket("/ws/{client_id}")
async def echo(websocket: WebSocket, client_id: str) -> None:
    await websocket.accept()
    CONNECTED.add(client_id)
    while True:
        text = await websocket.receive_text()
        await websocket.send_text(f"Echo: {text}")
    CONNECTED.discard(client_id)  # never reached: the loop only ends by raising
