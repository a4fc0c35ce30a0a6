"""P15, fixed: cleanup after a client leaves."""

from fastapi import FastAPI, WebSocket

app = FastAPI()
connections: list[WebSocket] = []
handlers = 0  # handlers still running: the test waits for 0 before counting leaks


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    global handlers
    handlers += 1
    await websocket.accept()
    connections.append(websocket)
    try:
        async for text in websocket.iter_text():
            await websocket.send_text(f"{text} ({len(connections)} registered)")
    finally:
        connections.remove(websocket)
        handlers -= 1


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"registered": len(connections), "handlers": handlers}
