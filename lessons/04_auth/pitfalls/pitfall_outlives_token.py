"""P24, broken: a connection authenticated by a token that expires."""

import os
import secrets

import jwt
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect

app = FastAPI()
SECRET_KEY = os.environ.get("WSLAB_JWT_SECRET") or secrets.token_urlsafe(32)


@app.websocket("/ws")
async def echo(websocket: WebSocket, token: str = "") -> None:
    try:
        claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError as exc:
        raise HTTPException(401, f"invalid token: {exc}") from None
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{claims['sub']}: {text}")
    except WebSocketDisconnect:
        pass
