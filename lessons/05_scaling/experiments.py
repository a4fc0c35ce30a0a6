"""Lesson 05's experiments: the client side of what the notebook shows, read top to bottom.

``big_token`` opens a WebSocket handshake whose request line (or one header) is 10 kB long,
against the P35 apps, and says what the server did with it, in the words of
``lessons/kit/versions.py``'s claim ``oversized-handshake``: the behaviour changed in uvicorn
0.55, so the notebook prints which one your install shows.
"""

from __future__ import annotations

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from lessons import find
from lessons.kit import LiveServer
from lessons.kit.sockets import HAVE_SS, server_sockets
from lessons.kit.timing import eventually
from lessons.kit.versions import CLAIMS

OVERSIZED = CLAIMS["oversized-handshake"]
SILENT, ANSWERED = (era.behaviour for era in OVERSIZED.eras)


async def big_token(stem: str, where: str = "query", wait: float = 1.0) -> str:
    """Send ``stem``'s app (``pitfall_oversized_handshake`` or ``fix_...``) a handshake with
    10,000 characters in its query string or in one header; return what the server did."""
    module = find("05").module(stem)
    big = "a" * 10_000  # over websockets' 8 KiB limit for a line, under h11's 16 KiB
    with LiveServer(module.app, ws=module.WS, log_level="critical") as live:

        def held() -> list[str]:  # this server's sockets that are still open
            return [str(s) for s in server_sockets(live.port) if s.owned] if HAVE_SS else []

        url = live.ws_url(f"/ws?token={big}" if where == "query" else "/ws")
        headers = {"X-Token": big} if where == "header" else None
        try:
            async with connect(url, additional_headers=headers, open_timeout=wait):
                return "accepted"
        except TimeoutError:  # no answer at all: does the server still hold the socket?
            return SILENT if held() or not HAVE_SS else f"no answer within {wait} s"
        except InvalidStatus as refused:
            status = refused.response.status_code
            await eventually(lambda: not held())  # the socket is freed, or this times out
            return ANSWERED if status == (414 if where == "query" else 431) else f"HTTP {status}"
