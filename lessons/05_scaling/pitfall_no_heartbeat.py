"""P26, broken: no heartbeat, so a half-open peer stays in the room forever.

A client that vanishes without a close frame (a frozen process, a laptop lid, a NAT or
proxy that forgot the flow) leaves ``receive_text()`` waiting for ever: nothing on the
wire says the peer is gone. Unless uvicorn's protocol pings are on (``--ws-ping-interval``,
``--ws-ping-timeout``), the server counts it as a member until it restarts.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
clients: set[WebSocket] = set()


@app.websocket("/ws")
async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    print(f"joined: {len(clients)} clients", flush=True)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)
        print(f"left: {len(clients)} clients", flush=True)
