"""P04, broken: a client leaves an echo handler that loops on receive_text()."""

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
