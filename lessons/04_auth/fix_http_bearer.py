"""P25, fixed: a WebSocket-aware dependency reads what a browser can send.

A browser's handshake carries the URL, cookies and ``Origin``, nothing else you choose.
Here the token comes from the query string; app.py prefers a single-use ticket there
(P20) or a cookie with an Origin check (P22).
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


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
