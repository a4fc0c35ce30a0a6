"""Lesson 04's experiments: one WebSocket handshake, seen as a client sees it, in one line.

A server that refuses a handshake before ``accept()`` answers with HTTP: a status and a
body, never a close frame. After ``accept()`` it can only close, with a code and a reason.
``knock`` tries one handshake and prints whichever the client got:

    refused: HTTP 401 {"detail":"missing token"}
    accepted; ← {"type":"welcome","user":"alice"}; closed after 1.0 s: 1008 'authentication timeout'

Given an app instead of a URL, it serves the app on a real uvicorn for the call. The
server's log is captured, not printed (``log="WebSocket /ws"`` prints the lines that
contain that text).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lessons.kit.client import Message
from lessons.kit.observe import ServerLog, server_log
from lessons.kit.server import LiveServer
from lessons.kit.timing import scaled


@dataclass
class Knock:
    """What one handshake gave the client."""

    status: int  # 101 when accepted
    body: str = ""  # the refusal's body
    received: list[Message] = field(default_factory=list)
    close_code: int | None = None  # None: still open when the client stopped waiting
    close_reason: str = ""
    log: ServerLog = field(default_factory=ServerLog)

    @property
    def accepted(self) -> bool:
        return self.status == 101

    def _ipython_display_(self) -> None:
        """A cell ending in ``await knock(...)`` shows the line knock printed, not this too."""


async def _knock(
    url: str, send: Message | None, wait: float, connect_options: dict[str, Any]
) -> tuple[Knock, str]:
    try:
        async with connect(url, open_timeout=scaled(5), **connect_options) as ws:
            seen, parts, started = Knock(101), ["accepted"], time.perf_counter()
            if send is not None:
                await ws.send(send)
            try:
                async with asyncio.timeout(scaled(wait)):
                    async for message in ws:  # ends when the server closes
                        seen.received.append(message)
                        parts.append(f"← {message}")
            except TimeoutError:
                return seen, "; ".join([*parts, f"still open after {wait:g} s"])
            except ConnectionClosed:
                pass
            seen.close_code, seen.close_reason = int(ws.close_code or 1006), ws.close_reason or ""
            after = time.perf_counter() - started
            parts.append(f"closed after {after:.1f} s: {seen.close_code} {seen.close_reason!r}")
            return seen, "; ".join(parts)
    except InvalidStatus as refused:
        body = bytes(refused.response.body or b"").decode(errors="replace")
        status = refused.response.status_code
        return Knock(status, body), f"refused: HTTP {status} {body or '(empty body)'}"


async def knock(
    target: str | Any,
    path: str = "/ws",
    *,
    send: Message | None = None,
    wait: float = 0.2,
    label: str = "",
    log: str | None = None,
    **connect_options: Any,
) -> Knock:
    """Open one handshake on ``target`` (a ``ws://`` URL, or an app served for the call at
    ``path``), send ``send`` if given, collect messages for up to ``wait`` seconds or until
    the server closes, and print what the client saw in one line. ``connect_options`` go to
    ``websockets.connect`` (``additional_headers``, ``origin``, ``subprotocols``)."""
    with server_log() as records:  # whichever server answers, its log is not printed
        if isinstance(target, str):
            seen, line = await _knock(target, send, wait, connect_options)
        else:
            with LiveServer(target, log_level="info") as live:
                seen, line = await _knock(live.ws_url(path), send, wait, connect_options)
    print(f"{label}: {line}" if label else line)
    seen.log = records
    for text in records.lines if log else []:
        if log in text:
            print("  server log:", text)
    return seen
