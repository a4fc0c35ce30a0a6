"""The protocols every kit server runs: uvicorn's defaults, with bounds added.

(uvicorn 0.54 and older never wrote the answer to a handshake that the ``websockets`` parser
refused as too big, 414 or 431, and held the socket: the guard used to write it. uvicorn 0.55,
the oldest release this project supports, writes it itself; claim ``oversized-handshake`` in
``lessons/kit/versions.py``.)

uvicorn waits a fixed 10 s for the peer's reply to a close frame; the guard waits
``CLOSE_TIMEOUT``. And uvicorn waits forever for a request that never finishes (a client
that connects and sends half a handshake, or nothing): ``GuardedHTTP`` answers 408 and
closes when the first request's head is not complete within ``HEAD_TIMEOUT``. (A peer
that stops reading is released by the kernel: ``TCP_USER_TIMEOUT`` in
``lessons.kit.server.bind_socket``.)

Use them with ``uvicorn.Config(app, ws=GUARDED_WS, http=GUARDED_HTTP)`` or ``uvicorn
app:app --ws lessons.kit.guard:GuardedProtocol --http lessons.kit.guard:GuardedHTTP``;
measured against the plain implementations by ``lessons.bench.implementations``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GUARDED_WS = "lessons.kit.guard:GuardedProtocol"
GUARDED_HTTP = "lessons.kit.guard:GuardedHTTP"
# seconds to wait for the peer's close frame after sending ours (WSLAB_CLOSE_TIMEOUT overrides)
CLOSE_TIMEOUT = float(os.environ.get("WSLAB_CLOSE_TIMEOUT", "3"))
# seconds from connecting to a complete request head (WSLAB_HEAD_TIMEOUT overrides)
HEAD_TIMEOUT = float(os.environ.get("WSLAB_HEAD_TIMEOUT", "10"))
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedProtocol(WebSocketsSansIOProtocol):
    """``websockets-sansio`` that waits at most ``CLOSE_TIMEOUT`` seconds for a closing
    handshake (claim ``close-timeout``: uvicorn's own is a fixed 10 s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT


class GuardedHTTP(H11Protocol):
    """uvicorn's h11 protocol that answers 408 and closes a connection whose first request
    head is not complete ``HEAD_TIMEOUT`` seconds after it connected."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.head_deadline = self.loop.call_later(HEAD_TIMEOUT, self.head_too_slow)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None or self.transport.get_protocol() is not self:  # upgraded
            self.head_deadline.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_deadline.cancel()
        super().connection_lost(exc)

    def head_too_slow(self) -> None:
        if self.transport.get_protocol() is self and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()
