"""P09, broken: a FastAPI dependency that refuses the handshake before accept."""

from typing import Annotated

from fastapi import Depends, FastAPI, WebSocket, WebSocketException, status

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # stands in for real token verification (see credentials.py)


def current_user(token: str = "") -> str:
    user = TOKENS.get(token)
    if user is None:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "invalid token")
    return user


@app.websocket("/ws")
async def welcome(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
