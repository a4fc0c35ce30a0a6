"""P23, fixed: where the JWT signing secret comes from."""

import logging
import os
import secrets

import jwt
from fastapi import FastAPI, HTTPException, WebSocket

app = FastAPI()
logger = logging.getLogger("wslab.auth")
SECRET_KEY = os.environ.get("WSLAB_JWT_SECRET") or secrets.token_urlsafe(32)
REQUIRED = {"require": ["exp", "sub"]}  # refuse a token without an expiry or a subject


def verify_token(token: str) -> str:
    try:
        claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], options=REQUIRED)
    except jwt.InvalidTokenError as exc:
        logger.info("refused a token: %s", exc)
        raise HTTPException(401, f"invalid token: {exc}") from None
    return claims["sub"]


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = verify_token(token)
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
