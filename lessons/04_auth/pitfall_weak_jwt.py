"""P23, broken: a hard-coded secret, ``jwt.decode`` without ``algorithms``, a bare ``except``.

Seed 001's ``verify_token``, nearly verbatim. With PyJWT 2, decode() without ``algorithms``
raises DecodeError for every token; the bare ``except:`` turns that into "Invalid
authentication", so every valid user is locked out and nothing says why. The secret is in
the source (anyone who reads it can mint tokens) and too short: PyJWT warns about it.
"""

import jwt
from fastapi import FastAPI, Query, WebSocket
from fastapi.exceptions import WebSocketException

app = FastAPI()
SECRET_KEY = "your-secret-key-here-"


def verify_token(token: str) -> str:
    try:
        payload = jwt.decode(token, SECRET_KEY)
        return payload.get("sub")
    except:  # noqa: E722
        raise WebSocketException(code=1008, reason="Invalid authentication")  # noqa: B904


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = Query(...)) -> None:
    user = verify_token(token)
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
