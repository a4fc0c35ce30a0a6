"""P13, broken: one client that stops reading stalls the broadcast for everyone.

``broadcast`` awaits each send in turn. A send waits while the receiver's buffers are
full, and a client that stops reading fills them: after about 4 MB on this machine
(the kernel's send buffer plus uvicorn's), that client's send never returns, and nobody
after it, or in any later broadcast, gets anything.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


async def broadcast(message: str) -> None:
    for client in list(clients):
        try:
            await client.send_text(message)  # waits while this client's buffers are full
        except WebSocketDisconnect:
            clients.discard(client)


@app.websocket("/ws")
async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            await broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"clients": len(clients), "dropped": 0}  # nobody is ever dropped here
