"""P09, fixed: refuse with an HTTP denial response: status 401 and a body saying why.

The ASGI "websocket.http.response" extension (uvicorn and TestClient both offer it) lets a
handler answer the upgrade request with a plain HTTP response. Non-browser clients read the
status and the body; TestClient raises ``WebSocketDenialResponse`` with the same status.
"""

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

app = FastAPI()
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        await websocket.send_denial_response(JSONResponse({"detail": "invalid token"}, 401))
        return
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
