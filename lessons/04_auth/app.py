"""Authentication: prove who is on the socket, before accept, and keep proving it.

Run it with ``wslab serve 04`` (or ``uvicorn app:app`` in this folder), open the page and
log in as alice, bob or carol (password: the name followed by ``-password``). Settings:
``WSLAB_JWT_SECRET`` (the HS256 secret, 32 bytes or more; unset: a random one per process,
and a warning), ``WSLAB_TOKEN_TTL`` (seconds, default 900), ``WSLAB_ALLOWED_ORIGINS``
(comma-separated origins that may use the cookie on ``/ws/cookie``; unset: the page's own),
``WSLAB_SCRYPT_N`` (the password hash's cost, default 16384, a power of two).
"""

import asyncio
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Literal

from credentials import Auth, AuthError, Principal, User  # beside this file: who may log in
from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection

COOKIE = "wslab_session"
CLOSE_POLICY = 1008  # first-message auth missing, late or invalid
CLOSE_TOKEN_EXPIRED = 4001  # an application code: "log in again", distinct from 1008
HERE = Path(__file__).parent

app = FastAPI(title="wslab 04: authentication")
app.state.auth = Auth()
app.state.rooms = defaultdict(set)


def get_auth(connection: HTTPConnection) -> Auth:
    """The app's Auth: an HTTPConnection is a Request or a WebSocket, so both kinds of route
    can depend on it."""
    return connection.app.state.auth


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(HERE / "index.html")


@app.get("/page.js")
async def page_script() -> FileResponse:
    return FileResponse(HERE / "page.js", media_type="text/javascript")


class Login(BaseModel):
    username: str
    password: str


@app.post("/login")
def login(form: Login, auth: Annotated[Auth, Depends(get_auth)]) -> JSONResponse:
    """A plain ``def``: scrypt is slow on purpose, so FastAPI runs it in a thread (P07)."""
    token = auth.issue_token(auth.login(form.username, form.password))
    response = JSONResponse({"access_token": token, "expires_in": auth.token_ttl})
    max_age = math.ceil(auth.token_ttl)
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict")
    return response


def bearer(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())],
    auth: Annotated[Auth, Depends(get_auth)],
) -> Principal:
    """For HTTP routes only: a fetch() can set Authorization, new WebSocket() cannot."""
    return auth.verify_token(credentials.credentials)


@app.post("/ticket")
async def ticket(
    principal: Annotated[Principal, Depends(bearer)], auth: Annotated[Auth, Depends(get_auth)]
) -> dict[str, str | float]:
    return {"ticket": auth.issue_ticket(principal), "expires_in": auth.ticket_ttl}


# Dependencies run before the route's body, so before accept(): raising HTTPException there
# refuses the handshake with an HTTP status and a reason (WebSocketException: a bare 403, P09).


async def query_user(auth: Annotated[Auth, Depends(get_auth)], token: str = "") -> Principal:
    """Transport 1, ``?token=<JWT>``: kept for comparison, uvicorn logs the URL (P20)."""
    return auth.verify_token(token)


async def ticket_user(auth: Annotated[Auth, Depends(get_auth)], ticket: str = "") -> Principal:
    """Transport 2, ``?ticket=<single use>``: a ticket in a log is already spent."""
    return auth.redeem_ticket(ticket)


async def cookie_user(websocket: WebSocket, auth: Annotated[Auth, Depends(get_auth)]) -> Principal:
    """Transport 3, the session cookie: any page can make the browser send it (P22)."""
    if not auth.origin_allowed(websocket):
        raise AuthError(f"origin not allowed: {websocket.headers.get('origin')}", 403)
    return auth.verify_token(websocket.cookies.get(COOKIE))


class ClientMessage(BaseModel):
    """What a client may send. Any other field (a "user", say) is ignored (P21)."""

    type: Literal["join", "say"]
    room: str
    text: str = ""


async def handle(websocket: WebSocket, user: User, joined: set[str], raw: str) -> None:
    """Authorize one message: the user's rooms decide; the server stamps the sender."""
    rooms: defaultdict[str, set[WebSocket]] = websocket.app.state.rooms
    try:
        message = ClientMessage.model_validate_json(raw)
    except ValidationError as exc:
        await websocket.send_json({"type": "error", "error": exc.errors()[0]["msg"]})
        return
    room = message.room
    if message.type == "join" and room not in user.rooms:
        await websocket.send_json({"type": "error", "error": f"{user.name} may not join {room}"})
    elif message.type == "join":
        joined.add(room)
        rooms[room].add(websocket)
        await websocket.send_json({"type": "joined", "room": room})
    elif room not in joined:
        await websocket.send_json({"type": "error", "error": f"join {room} first"})
    else:
        event = {"type": "message", "room": room, "user": user.name, "text": message.text}
        for member in list(rooms[room]):
            try:
                await member.send_json(event)
            except (WebSocketDisconnect, RuntimeError):
                rooms[room].discard(member)  # it left meanwhile


async def chat(websocket: WebSocket, principal: Principal) -> None:
    """Serve an authenticated, accepted connection until it leaves or its token expires (P24)."""
    user, joined = principal.user, set[str]()
    welcome = {"type": "welcome", "user": user.name, "rooms": sorted(user.rooms)}
    await websocket.send_json({**welcome, "expires_at": principal.expires_at})
    try:
        async with asyncio.timeout(principal.expires_at - time.time()):
            while True:
                await handle(websocket, user, joined, await websocket.receive_text())
    except TimeoutError:
        await websocket.close(CLOSE_TOKEN_EXPIRED, "token expired")
    except WebSocketDisconnect:
        pass
    finally:
        for room in joined:
            websocket.app.state.rooms[room].discard(websocket)


@app.websocket("/ws/query")
async def ws_query(ws: WebSocket, principal: Annotated[Principal, Depends(query_user)]) -> None:
    await ws.accept()
    await chat(ws, principal)


@app.websocket("/ws/ticket")
async def ws_ticket(ws: WebSocket, principal: Annotated[Principal, Depends(ticket_user)]) -> None:
    await ws.accept()
    await chat(ws, principal)


@app.websocket("/ws/cookie")
async def ws_cookie(ws: WebSocket, principal: Annotated[Principal, Depends(cookie_user)]) -> None:
    await ws.accept()
    await chat(ws, principal)


class AuthMessage(BaseModel):
    type: Literal["auth"]
    token: str


@app.websocket("/ws/first-message")
async def ws_first_message(ws: WebSocket, auth: Annotated[Auth, Depends(get_auth)]) -> None:
    """Transport 4: accept, then demand ``{"type": "auth", "token": ...}`` within a deadline."""
    await ws.accept()
    try:
        async with asyncio.timeout(auth.first_message_deadline):
            raw = await ws.receive_text()
        principal = auth.verify_token(AuthMessage.model_validate_json(raw).token)
    except TimeoutError:
        return await ws.close(CLOSE_POLICY, "authentication timeout")
    except ValidationError:
        return await ws.close(CLOSE_POLICY, "expected an auth message")
    except AuthError as exc:
        return await ws.close(CLOSE_POLICY, exc.detail)
    except WebSocketDisconnect:
        return None
    await chat(ws, principal)
