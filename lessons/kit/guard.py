"""The protocols every kit server runs: uvicorn's defaults, with bounds added.

uvicorn's default implementation (``websockets-sansio``) hands the handshake to the
``websockets`` parser once its own HTTP parser has accepted the request. When that parser
refuses it (a request line over 8 KiB: 414; a header over 8 KiB: 431), it queues the
answer, but uvicorn 0.54 never writes it: the client waits for an answer that never comes
and the server holds the socket until the client gives up. The guard writes the answer
and closes the connection.

uvicorn also waits a fixed 10 s for the peer's reply to a close frame; the guard waits
``CLOSE_TIMEOUT``. And uvicorn waits forever for a request that never finishes (a client
that connects and sends half a handshake, or nothing): ``GuardedHTTP`` answers 408 and
closes when the first request's head is not complete within ``HEAD_TIMEOUT``. (A peer
that stops reading is released by the kernel: ``TCP_USER_TIMEOUT`` in
``lessons.kit.server.bind_socket``.)

Use them with ``uvicorn.Config(app, ws=GUARDED_WS, http=GUARDED_HTTP)`` or ``uvicorn
app:app --ws lessons.kit.guard:GuardedProtocol --http lessons.kit.guard:GuardedHTTP``;
measured against the plain implementations by ``lessons.kit.implementations``.
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
    """``websockets-sansio`` that answers the handshakes its parser refuses, and waits at
    most ``CLOSE_TIMEOUT`` seconds for a closing handshake."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.handshake_exc is not None and not self.handshake_initiated:
            self.handshake_initiated = self.handshake_complete = self.close_sent = True
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()


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
