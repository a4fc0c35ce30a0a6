"""P19, fixed: authentication by the first message, after accept."""

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # stands in for real token verification (see credentials.py)
AUTH_DEADLINE = 1.0  # seconds an anonymous socket may stay open


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
