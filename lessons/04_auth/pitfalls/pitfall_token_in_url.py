"""P20, broken: a token in the query string, and a filter that redacts it from the log."""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, WebSocket

REDACTED = ["uvicorn.access"]  # the loggers the filter is installed on
TOKEN = re.compile(r"\btoken=[^&\s\"]+")
TOKENS = {"alice-token": "alice"}  # stands in for real token verification (see credentials.py)


def redact(record: logging.LogRecord) -> bool:
    """A logging filter can be a function: it rewrites the record's arguments."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            TOKEN.sub("token=[redacted]", a) if isinstance(a, str) else a for a in record.args
        )
    return True


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    for name in REDACTED:
        logging.getLogger(name).addFilter(redact)
    yield
    for name in REDACTED:
        logging.getLogger(name).removeFilter(redact)


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def welcome(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    await websocket.close()
