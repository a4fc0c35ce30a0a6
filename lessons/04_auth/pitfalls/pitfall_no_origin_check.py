"""P22, broken: a WebSocket authenticated by a session cookie."""

import secrets

from fastapi import FastAPI, HTTPException, Response, WebSocket

app = FastAPI()
SESSIONS: dict[str, str] = {}  # session id -> user name


@app.post("/login")
async def login(user: str, response: Response) -> dict[str, str]:
    """Demo login, no password (app.py has the real one): sets the session cookie."""
    session = secrets.token_urlsafe(16)
    SESSIONS[session] = user
    response.set_cookie("session", session, httponly=True, samesite="strict")
    return {"user": user}


@app.websocket("/ws")
async def inbox(websocket: WebSocket) -> None:
    user = SESSIONS.get(websocket.cookies.get("session", ""))
    if user is None:
        raise HTTPException(401, "not logged in")
    await websocket.accept()
    await websocket.send_json({"type": "inbox", "user": user, "messages": ["private note"]})
    await websocket.close()
