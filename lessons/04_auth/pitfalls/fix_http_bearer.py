"""P25, fixed: a security dependency on a WebSocket route."""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see credentials.py)


def current_user(token: str = "") -> str:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    return user


@app.websocket("/ws")
async def welcome(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
