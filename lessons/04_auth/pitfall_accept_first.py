"""P19, broken: accept first, authenticate later, and wait for the credential forever.

Every handshake is accepted (HTTP 101) before anyone is known. A client that never sends
its token holds a socket and a server task for as long as it likes: opening hundreds of
them costs an attacker nothing.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


@app.websocket("/ws")
async def welcome(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        token = await websocket.receive_text()  # the first message must be the token
    except WebSocketDisconnect:
        return
    user = TOKENS.get(token)
    if user is None:
        await websocket.close(1008, "invalid token")
        return
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
