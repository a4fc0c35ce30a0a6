"""P22, broken: cookie authentication with no Origin check (Cross-Site WebSocket Hijacking).

A browser attaches the site's cookies to a WebSocket handshake whichever page opens it,
and the same-origin policy does not stop WebSockets (CORSMiddleware ignores them too). So
a page from another origin opens this socket with the victim's cookie and reads the
victim's inbox. ``SameSite`` does not help here: another port is another origin, but the
same site, and cookies are per host, not per port.
"""

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
