"""P09, broken: refusing a handshake with ``close(1008, reason)`` before ``accept()``.

In-process, TestClient reports close 1008 with the reason, so a test looks fine. On the wire
no close frame can exist before the handshake completes: uvicorn answers HTTP 403 with an
empty body, and the reason is lost. (A browser sees neither: only close code 1006.)
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        await websocket.close(1008, "invalid token")
        return
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
