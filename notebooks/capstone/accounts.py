"""The board's accounts, imported by app.py: demo users, password checks and tokens (lesson 04).

Environment: ``WSLAB_JWT_SECRET`` (shared by every process) and ``WSLAB_TOKEN_SECONDS``
(a token's lifetime).
"""

import hashlib
import hmac
import logging
import os
import secrets
import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

log = logging.getLogger("capstone")
TOKEN_SECONDS = float(os.environ.get("WSLAB_TOKEN_SECONDS", "900"))

SECRET = os.environ.get("WSLAB_JWT_SECRET") or ""
if not SECRET:
    SECRET = secrets.token_urlsafe(32)
    log.warning("WSLAB_JWT_SECRET is not set: tokens only work on this process")

# Demo users (passwords on the page): salt and PBKDF2-SHA256 hash, as a user table stores them.
USERS = {
    "ada": "77736c61622d73616c742d6164612d31:"
    "d05587deb042608cbd2906242eaaa4e791b51c2573a5f76d0c747deec6468134",
    "alan": "77736c61622d73616c742d616c616e2d32:"
    "be77c85cca41665287e79cf056aa62e4acc7ca3a8ab5e3295ff755d244bd11e8",
}
NOBODY = "00" * 16 + ":" + "00" * 32  # an unknown name costs one hash too


def password_matches(password: str, stored: str) -> bool:
    """PBKDF2, 100,000 rounds: slow on purpose, so never on the event loop (P07)."""
    salt, expected = stored.split(":")
    given = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 100_000)
    return hmac.compare_digest(given, bytes.fromhex(expected))


class Login(BaseModel):
    username: str
    password: str


def issue_token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": time.time() + TOKEN_SECONDS}, SECRET, "HS256")


def token_claims(token: object) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token naming a known user; None for anything else."""
    if not isinstance(token, str):
        return None
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError:
        return None
    return claims if claims.get("sub") in USERS else None


def current_user(
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> str:
    claims = token_claims(credentials.credentials) if credentials else None
    if claims is None:
        raise HTTPException(401, "a valid bearer token is required")
    return claims["sub"]


User = Annotated[str, Depends(current_user)]
