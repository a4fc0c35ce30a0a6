"""P19, broken: authentication by the first message, after accept."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # stands in for real token verification (see credentials.py)


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
