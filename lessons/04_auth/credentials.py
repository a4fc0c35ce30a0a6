"""Who may log in, and the tokens and tickets that prove it: the credentials ``app.py`` checks.

Passwords are salted scrypt hashes compared in constant time; tokens are HS256 JWTs signed
with ``WSLAB_JWT_SECRET``; tickets are random, single-use and short-lived.
"""

import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass, field

import jwt
from fastapi import HTTPException, WebSocket

SECRET_ENV = "WSLAB_JWT_SECRET"
ALGORITHM = "HS256"
SCRYPT_N = int(os.environ.get("WSLAB_SCRYPT_N", 2**14))  # scrypt's cost: its memory and time
logger = logging.getLogger("wslab.auth")


@dataclass(frozen=True)
class User:
    name: str
    salt: bytes
    password_hash: bytes
    rooms: frozenset[str]


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=8, p=1)


def make_user(name: str, password: str, rooms: set[str]) -> User:
    salt = secrets.token_bytes(16)
    return User(name, salt, hash_password(password, salt), frozenset(rooms))


def demo_users() -> dict[str, User]:
    rooms = {"alice": {"lobby", "staff"}, "bob": {"lobby", "staff"}, "carol": {"lobby"}}
    return {name: make_user(name, f"{name}-password", r) for name, r in rooms.items()}


def load_secret() -> str:
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret.encode()) >= 32:
        return secret
    if secret:
        raise RuntimeError(f"{SECRET_ENV} must be at least 32 bytes for HS256")
    logger.warning("%s is not set: using a random secret for this process only", SECRET_ENV)
    return secrets.token_urlsafe(32)


def load_origins() -> frozenset[str] | None:
    value = os.environ.get("WSLAB_ALLOWED_ORIGINS", "")
    return frozenset(o.strip() for o in value.split(",") if o.strip()) or None


class AuthError(HTTPException):
    """A refused credential: raised before accept, FastAPI answers HTTP 401 with the reason."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(status, reason)


@dataclass(frozen=True)
class Principal:
    """Who is on a connection, and until when (unix time) that proof holds."""

    user: User
    expires_at: float


@dataclass
class Auth:
    """Everything the routes need to authenticate: secret, lifetimes, users, tickets."""

    secret: str = field(default_factory=load_secret, repr=False)
    token_ttl: float = field(default_factory=lambda: float(os.environ.get("WSLAB_TOKEN_TTL", 900)))
    ticket_ttl: float = 30.0
    first_message_deadline: float = 5.0
    allowed_origins: frozenset[str] | None = field(default_factory=load_origins)
    users: dict[str, User] = field(default_factory=demo_users)
    tickets: dict[str, tuple[Principal, float]] = field(default_factory=dict)

    def login(self, name: str, password: str) -> User:
        user = self.users.get(name)
        salt = user.salt if user else b"\0" * 16  # hash anyway: an unknown name costs the same
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
        if claims["sub"] not in self.users:
            raise AuthError("unknown user")
        return Principal(self.users[claims["sub"]], claims["exp"])

    def issue_ticket(self, principal: Principal) -> str:
        """A random ticket that works once, for ``ticket_ttl`` seconds at most."""
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
        return principal

    def origin_allowed(self, websocket: WebSocket) -> bool:
        scheme = "https" if websocket.url.scheme == "wss" else "http"
        own = f"{scheme}://{websocket.headers.get('host')}"  # the page's own origin
        return websocket.headers.get("origin") in (self.allowed_origins or {own})
