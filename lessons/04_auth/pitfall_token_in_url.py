"""P20, broken: a token in the query string is written to the server's log.

uvicorn logs every handshake with its path and query string, at INFO on ``uvicorn.error``:
``127.0.0.1:50312 - "WebSocket /ws?token=alice-token" [accepted]``. Turning the access log
off (``--no-access-log``) does not remove that line: it only silences ``uvicorn.access``,
the HTTP log. Whoever reads the log (or a proxy's log) can replay the token.
"""

from fastapi import FastAPI, HTTPException, WebSocket

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
