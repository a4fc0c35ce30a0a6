"""P20, fixed: a logging filter redacts ``token=...`` before uvicorn's log is written.

Redaction protects this process's log only; a proxy in front logs the URL too. So in app.py
the URL carries at most a single-use ticket (worthless once used), or nothing at all
(first-message auth, a cookie).
"""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, WebSocket

CREDENTIAL_IN_URL = re.compile(r"\b(token|ticket)=[^&\s\"]+")


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                CREDENTIAL_IN_URL.sub(r"\1=[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    redact = RedactCredentials()
    logging.getLogger("uvicorn.error").addFilter(redact)  # the WebSocket handshake lines
    logging.getLogger("uvicorn.access").addFilter(redact)  # the HTTP request lines
    yield
    logging.getLogger("uvicorn.error").removeFilter(redact)
    logging.getLogger("uvicorn.access").removeFilter(redact)


app = FastAPI(lifespan=lifespan)
TOKENS = {"alice-token": "alice"}  # a dict stands in for real verification (see app.py)


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
