"""P32, broken: no rate limit: one flooding client makes the server relay everything it sends.

Every message a client sends is broadcast to the room. Nothing stops one client from
sending thousands per second: the server spends its time relaying them, and every other
client must receive (and wade through) the flood before anything else.
"""

import contextlib

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            for client in list(clients):
                with contextlib.suppress(Exception):
                    await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
