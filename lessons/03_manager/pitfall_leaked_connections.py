"""P15, broken: clients that leave stay registered; the list only grows.

``websocket.iter_text()`` ends the loop quietly when the client leaves: it swallows
WebSocketDisconnect. So the cleanup in ``except WebSocketDisconnect`` never runs, after an
abrupt exit or a clean one. After 100 clients come and go, the server still holds 100
dead sockets, and every broadcast tries them all.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

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
    except WebSocketDisconnect:
        connections.remove(websocket)
    handlers -= 1


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"registered": len(connections), "handlers": handlers}
