"""P23, fixed: the secret from the environment, the algorithm pinned, each failure named.

``WSLAB_JWT_SECRET`` unset: a random per-process secret and a warning. ``algorithms`` is
pinned to HS256, ``exp`` and ``sub`` are required, and only ``jwt.InvalidTokenError`` is
caught: the client gets HTTP 401 with the reason, the log says which check failed.
"""

import logging
import os
import secrets

import jwt
from fastapi import FastAPI, HTTPException, Query, WebSocket

logger = logging.getLogger("wslab.auth")
app = FastAPI()
SECRET_KEY = os.environ.get("WSLAB_JWT_SECRET", "")
if not SECRET_KEY:
    logger.warning("WSLAB_JWT_SECRET is not set: using a random secret for this process only")
    SECRET_KEY = secrets.token_urlsafe(32)


def verify_token(token: str) -> str:
    try:
        payload = jwt.decode(
            token, SECRET_KEY, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.InvalidTokenError as exc:
        logger.info("refused a token: %s", exc)
        raise HTTPException(401, f"invalid token: {exc}") from None
    return payload["sub"]


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = Query(...)) -> None:
    user = verify_token(token)
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
