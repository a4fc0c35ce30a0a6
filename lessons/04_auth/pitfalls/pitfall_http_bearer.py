"""P25, broken: a security dependency on a WebSocket route."""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.security import OAuth2PasswordBearer

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see credentials.py)
oauth2 = OAuth2PasswordBearer(tokenUrl="/login")


def current_user(token: Annotated[str, Depends(oauth2)]) -> str:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    return user


@app.websocket("/ws")
async def welcome(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
