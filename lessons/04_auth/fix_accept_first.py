"""P19, fixed: an unauthenticated connection gets a short deadline, then close 1008.

Better still, verify before accept when the handshake can carry the credential (a ticket,
a cookie: see app.py). When it cannot, a deadline bounds what an anonymous client can hold.
"""

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)
AUTH_DEADLINE = 1.0  # seconds


@app.websocket("/ws")
async def welcome(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_DEADLINE):
            token = await websocket.receive_text()  # the first message must be the token
    except TimeoutError:
        await websocket.close(1008, "authentication timeout")
        return
    except WebSocketDisconnect:
        return
    user = TOKENS.get(token)
    if user is None:
        await websocket.close(1008, "invalid token")
        return
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
