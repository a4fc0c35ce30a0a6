"""How a real server answers a handshake, and what it logs meanwhile: lessons 02 and 04 check
what uvicorn logs after a denial response (its behaviour changed in 0.55).

- ``answer_and_log(app, path)``: a real client's handshake against a real server, and the
  warnings and errors the server logged meanwhile.
- ``denial_log(app, path)``: what uvicorn logs after a denial response, in the words of the
  claim ``denial-response-log``.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from lessons.kit.observe import server_log
from lessons.kit.server import LiveServer
from lessons.kit.timing import scaled

SPURIOUS = "ASGI callable returned without completing handshake."
# What uvicorn logs after a denial response, up to 0.54 and from 0.55: the eras of the claim
# ``denial-response-log`` (lessons.course.versions) use these words.
DENIAL_LOGS = f"logs {SPURIOUS!r} at ERROR"
DENIAL_QUIET = "logs no error"


def _body(body: bytes) -> str:
    return f"body {body.decode()}" if body else "an empty body"


async def answer_and_log(app: Any, path: str) -> tuple[str, list[str]]:
    """A real client's handshake on ``path`` against a real server: the answer, and the
    warnings and errors the server logged meanwhile."""
    with server_log() as records, LiveServer(app, log_level="info") as live:
        try:
            async with connect(live.ws_url(path), open_timeout=scaled(5)):
                answer = "101, accepted"
        except InvalidStatus as refused:
            answer = f"HTTP {refused.response.status_code}, {_body(refused.response.body)}"
    return answer, [line for line in records.lines if not line.startswith(("INFO", "DEBUG"))]


async def denial_log(app: Any, path: str) -> str:
    """What uvicorn logs when ``app`` sends a denial response on ``path``, in the words of
    the claim ``denial-response-log`` (``lessons.course.versions``): it changed in uvicorn 0.55."""
    answer, warnings = await answer_and_log(app, path)
    if answer.startswith(("101", "HTTP 403")):
        return f"no denial response: {answer}"
    if any(line.startswith("ERROR") and SPURIOUS in line for line in warnings):
        return DENIAL_LOGS
    return "; ".join(warnings) if warnings else DENIAL_QUIET
