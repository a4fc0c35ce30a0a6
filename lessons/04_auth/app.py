"""Authentication: prove who is on the socket, before accept, and keep proving it.

Run it: ``wslab serve 04`` (or ``uvicorn app:app`` in this folder), open the page and log
in as alice, bob or carol (password: the name followed by ``-password``).

Settings come from the environment:

- ``WSLAB_JWT_SECRET``: the HS256 signing secret, at least 32 bytes. Unset: a random secret
  per process, a warning in the log, and every token dies with the process.
- ``WSLAB_TOKEN_TTL``: token lifetime in seconds (default 900).
- ``WSLAB_ALLOWED_ORIGINS``: comma-separated origins allowed to use the session cookie on
  ``/ws/cookie``. Unset: only the page's own origin (``http://<Host header>``).

Refusals, documented and tested: before accept, HTTP 401 (missing, invalid, expired or
unknown credential) and HTTP 403 (Origin not allowed); after accept, close 1008 (first
message missing, late or invalid) and close 4001 when the token expires mid-connection.
"""

import asyncio
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Literal

import jwt
from fastapi import Depends, FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection

SECRET_ENV = "WSLAB_JWT_SECRET"
TTL_ENV = "WSLAB_TOKEN_TTL"
ORIGINS_ENV = "WSLAB_ALLOWED_ORIGINS"
ALGORITHM = "HS256"
COOKIE = "wslab_session"
CLOSE_POLICY = 1008  # first-message auth missing, late or invalid
CLOSE_TOKEN_EXPIRED = 4001  # an application code: "log in again", distinct from 1008

logger = logging.getLogger("wslab.auth")


# --- users: demo accounts with salted scrypt hashes -------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    salt: bytes
    password_hash: bytes
    rooms: frozenset[str]


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def make_user(name: str, password: str, rooms: set[str]) -> User:
    salt = secrets.token_bytes(16)
    return User(name, salt, hash_password(password, salt), frozenset(rooms))


def demo_users() -> dict[str, User]:
    return {
        "alice": make_user("alice", "alice-password", {"lobby", "staff"}),
        "bob": make_user("bob", "bob-password", {"lobby", "staff"}),
        "carol": make_user("carol", "carol-password", {"lobby"}),
    }


# --- tokens, tickets, origins ----------------------------------------------------------


class AuthError(Exception):
    """A credential was refused; the message says why (safe to show the client)."""


@dataclass(frozen=True)
class Principal:
    """Who is on a connection, and until when (unix time) that proof holds."""

    user: User
    expires_at: float


def load_secret() -> str:
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret.encode()) >= 32:
        return secret
    if secret:
        raise RuntimeError(f"{SECRET_ENV} must be at least 32 bytes for HS256")
    logger.warning("%s is not set: using a random secret for this process only", SECRET_ENV)
    return secrets.token_urlsafe(32)


def load_origins() -> frozenset[str] | None:
    value = os.environ.get(ORIGINS_ENV, "")
    return frozenset(o.strip() for o in value.split(",") if o.strip()) or None


@dataclass
class Auth:
    """Everything the routes need to authenticate: secret, lifetimes, users, tickets."""

    secret: str = field(default_factory=load_secret, repr=False)
    token_ttl: float = field(default_factory=lambda: float(os.environ.get(TTL_ENV, "900")))
    ticket_ttl: float = 30.0
    first_message_deadline: float = 5.0
    allowed_origins: frozenset[str] | None = field(default_factory=load_origins)
    users: dict[str, User] = field(default_factory=demo_users)
    tickets: dict[str, tuple[Principal, float]] = field(default_factory=dict)

    def login(self, name: str, password: str) -> User:
        user = self.users.get(name)
        # Hash even for an unknown name, so response time does not reveal who exists.
        salt = user.salt if user else b"\0" * 16
        attempt = hash_password(password, salt)
        if user is None or not hmac.compare_digest(attempt, user.password_hash):
            raise AuthError("wrong username or password")
        return user

    def issue_token(self, user: User) -> str:
        now = time.time()
        claims = {"sub": user.name, "iat": int(now), "exp": math.ceil(now + self.token_ttl)}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify_token(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing token")
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        user = self.users.get(claims["sub"])
        if user is None:
            raise AuthError("unknown user")
        return Principal(user, claims["exp"])

    def issue_ticket(self, principal: Principal) -> str:
        """A single-use ticket, valid ``ticket_ttl`` seconds, for the token's holder."""
        now = time.time()
        self.tickets = {t: held for t, held in self.tickets.items() if held[1] > now}
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = (principal, min(now + self.ticket_ttl, principal.expires_at))
        return ticket

    def redeem_ticket(self, ticket: str | None) -> Principal:
        principal, valid_until = self.tickets.pop(ticket or "", (None, 0.0))  # works once
        if principal is None:
            raise AuthError("unknown or already used ticket")
        if valid_until <= time.time():
            raise AuthError("ticket expired")
        if principal.user.name not in self.users:
            raise AuthError("unknown user")
        return principal  # the connection lives until the token that bought the ticket dies

    def origin_allowed(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        if self.allowed_origins is not None:
            return origin in self.allowed_origins
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        return origin == f"{scheme}://{websocket.headers.get('host')}"


# --- keeping credentials out of the log (P20) ------------------------------------------

CREDENTIAL_IN_URL = re.compile(r"\b(token|ticket)=[^&\s\"]+")


class RedactCredentials(logging.Filter):
    """uvicorn logs each handshake's path with its query string: hide token=... there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                CREDENTIAL_IN_URL.sub(r"\1=[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


REDACTED_LOGGERS = ("uvicorn.error", "uvicorn.access")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    redact = RedactCredentials()
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).addFilter(redact)
    yield
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).removeFilter(redact)


app = FastAPI(title="wslab 04: authentication", lifespan=lifespan)
app.state.auth = Auth()
app.state.rooms = defaultdict(set)


# --- HTTP: log in, buy a ticket ----------------------------------------------------------


def get_auth(connection: HTTPConnection) -> Auth:
    """The app's Auth, for HTTP routes and WebSocket routes alike."""
    return connection.app.state.auth


class Login(BaseModel):
    username: str
    password: str


@app.post("/login")
def login(form: Login, auth: Annotated[Auth, Depends(get_auth)]) -> JSONResponse:
    """A JWT in the body (for ?token=, first-message and tickets) and as an HttpOnly cookie.

    A plain ``def``: scrypt costs ~50 ms of CPU, so FastAPI runs it in its threadpool
    instead of blocking the event loop and every open socket (lesson 02, P07).
    """
    try:
        user = auth.login(form.username, form.password)
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from None
    token = auth.issue_token(user)
    body = {"access_token": token, "token_type": "bearer", "expires_in": auth.token_ttl}
    response = JSONResponse(body)
    response.set_cookie(
        COOKIE, token, max_age=math.ceil(auth.token_ttl), httponly=True, samesite="strict"
    )
    return response


def bearer_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())],
    auth: Annotated[Auth, Depends(get_auth)],
) -> Principal:
    """HTTP routes can use FastAPI's HTTPBearer: a fetch() can set Authorization."""
    try:
        return auth.verify_token(credentials.credentials)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


@app.post("/ticket")
async def ticket(
    principal: Annotated[Principal, Depends(bearer_user)], auth: Annotated[Auth, Depends(get_auth)]
) -> dict[str, str | float]:
    return {"ticket": auth.issue_ticket(principal), "expires_in": auth.ticket_ttl}


# --- WebSocket dependencies: refuse before accept (P19, P25) -----------------------------


def refuse(status: int, reason: str) -> HTTPException:
    """Raised before accept, FastAPI turns it into an HTTP denial response (P09)."""
    logger.info("refused a WebSocket handshake: %s", reason)
    return HTTPException(status, reason)


async def query_user(
    auth: Annotated[Auth, Depends(get_auth)], token: str | None = None
) -> Principal:
    """``/ws/query?token=<JWT>``: simplest, but the URL (and the token) lands in logs."""
    try:
        return auth.verify_token(token)
    except AuthError as exc:
        raise refuse(401, str(exc)) from None


async def ticket_user(
    auth: Annotated[Auth, Depends(get_auth)], ticket: str | None = None
) -> Principal:
    """``/ws/ticket?ticket=<single-use>``: a logged ticket is already spent."""
    try:
        return auth.redeem_ticket(ticket)
    except AuthError as exc:
        raise refuse(401, str(exc)) from None


async def cookie_user(websocket: WebSocket, auth: Annotated[Auth, Depends(get_auth)]) -> Principal:
    """``/ws/cookie``: the browser sends the cookie by itself, so check who is asking."""
    if not auth.origin_allowed(websocket):
        raise refuse(403, f"origin not allowed: {websocket.headers.get('origin')}")
    try:
        return auth.verify_token(websocket.cookies.get(COOKIE))
    except AuthError as exc:
        raise refuse(401, str(exc)) from None


# --- the chat every route serves once the user is known (P21, P24) -----------------------


class ClientMessage(BaseModel):
    """What a client may send. Any other field (a "user", say) is ignored."""

    type: Literal["join", "leave", "say"]
    room: str
    text: str = ""


async def broadcast(members: set[WebSocket], event: dict[str, str]) -> None:
    for member in list(members):
        try:
            await member.send_json(event)
        except (WebSocketDisconnect, RuntimeError):
            members.discard(member)  # it left meanwhile; its own handler cleans up too


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
    elif message.type == "leave":
        joined.discard(room)
        rooms[room].discard(websocket)
        await websocket.send_json({"type": "left", "room": room})
    else:
        event = {"type": "message", "room": room, "user": user.name, "text": message.text}
        await broadcast(rooms[room], event)


async def chat(websocket: WebSocket, principal: Principal) -> None:
    """Serve an authenticated, accepted connection until it leaves or its token expires."""
    user = principal.user
    joined: set[str] = set()
    rooms: defaultdict[str, set[WebSocket]] = websocket.app.state.rooms
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
            rooms[room].discard(websocket)


# --- four ways a browser can present a credential ----------------------------------------


@app.websocket("/ws/query")
async def ws_query(
    websocket: WebSocket, principal: Annotated[Principal, Depends(query_user)]
) -> None:
    await websocket.accept()
    await chat(websocket, principal)


@app.websocket("/ws/ticket")
async def ws_ticket(
    websocket: WebSocket, principal: Annotated[Principal, Depends(ticket_user)]
) -> None:
    await websocket.accept()
    await chat(websocket, principal)


@app.websocket("/ws/cookie")
async def ws_cookie(
    websocket: WebSocket, principal: Annotated[Principal, Depends(cookie_user)]
) -> None:
    await websocket.accept()
    await chat(websocket, principal)


class AuthMessage(BaseModel):
    type: Literal["auth"]
    token: str


@app.websocket("/ws/first-message")
async def ws_first_message(websocket: WebSocket, auth: Annotated[Auth, Depends(get_auth)]) -> None:
    """Accept, then demand ``{"type": "auth", "token": ...}`` within a deadline."""
    await websocket.accept()
    try:
        async with asyncio.timeout(auth.first_message_deadline):
            raw = await websocket.receive_text()
        principal = auth.verify_token(AuthMessage.model_validate_json(raw).token)
    except TimeoutError:
        await websocket.close(CLOSE_POLICY, "authentication timeout")
        return
    except (ValidationError, AuthError) as exc:
        reason = str(exc) if isinstance(exc, AuthError) else "expected an auth message"
        await websocket.close(CLOSE_POLICY, reason)
        return
    except WebSocketDisconnect:
        return
    await chat(websocket, principal)


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wslab 04: authentication</title>
<style>body{font:16px system-ui;margin:2rem;max-width:42rem}#log{white-space:pre-wrap}
fieldset{margin-bottom:1rem}</style>
</head>
<body>
<h1>Authenticated chat</h1>
<form id="login"><fieldset><legend>1. Log in over HTTP</legend>
<input id="username" value="alice" autocomplete="username">
<input id="password" type="password" value="alice-password" autocomplete="current-password">
<button>Log in</button> <span id="who">not logged in</span></fieldset></form>
<form id="connect"><fieldset><legend>2. Open the WebSocket</legend>
<select id="transport">
<option value="ticket">single-use ticket</option><option value="cookie">session cookie</option>
<option value="first-message">first message</option><option value="query">token in URL</option>
</select> <button>Connect</button> <span id="status">not connected</span></fieldset></form>
<form id="say"><fieldset><legend>3. Chat</legend>
<input id="room" value="lobby" size="8"> <button type="button" id="join">Join</button>
<input id="text" autocomplete="off" placeholder="say something"> <button>Send</button>
</fieldset></form>
<div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
const log = (line) => { $("log").textContent += line + "\\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws";
let token = null, ws = null;

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const response = await fetch("/login", {method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value})});
  const body = await response.json();
  token = response.ok ? body.access_token : null;
  $("who").textContent = response.ok ? `logged in as ${$("username").value}`
                                     : `login refused: ${body.detail}`;
};

async function socketUrl(transport) {
  const url = `${scheme}://${location.host}/ws/${transport}`;
  if (transport === "query") return `${url}?token=${encodeURIComponent(token)}`;
  if (transport === "ticket") {
    const response = await fetch("/ticket", {method: "POST",
      headers: {authorization: `Bearer ${token}`}});
    if (!response.ok) throw new Error(`no ticket: HTTP ${response.status}`);
    return `${url}?ticket=${encodeURIComponent((await response.json()).ticket)}`;
  }
  return url;  // cookie: the browser adds it; first-message: sent after open
}

$("connect").onsubmit = async (event) => {
  event.preventDefault();
  if (ws) ws.close();
  const transport = $("transport").value;
  try {
    ws = new WebSocket(await socketUrl(transport));
  } catch (error) {
    $("status").textContent = error.message;
    return;
  }
  ws.onopen = () => {
    if (transport === "first-message") ws.send(JSON.stringify({type: "auth", token}));
  };
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "welcome") $("status").textContent = `connected as ${m.user}`;
    else if (m.type === "message") log(`[${m.room}] ${m.user}: ${m.text}`);
    else if (m.type === "error") log(`error: ${m.error}`);
    else log(`${m.type} ${m.room}`);
  };
  ws.onclose = (event) => {
    if (event.target !== ws) return;  // an older socket, replaced by Connect
    $("status").textContent = `closed (${event.code}${event.reason ? " " + event.reason : ""})`;
  };
};

const send = (message) => ws.send(JSON.stringify({...message, room: $("room").value}));
$("join").onclick = () => send({type: "join"});
$("say").onsubmit = (event) => {
  event.preventDefault();
  send({type: "say", text: $("text").value});
  $("text").value = "";
};
</script>
</body>
</html>
"""


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)
