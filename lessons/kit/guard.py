"""The WebSocket protocol every kit server runs: uvicorn's default, with two bounds added.

uvicorn's default implementation (``websockets-sansio``) hands the handshake to the
``websockets`` parser once its own HTTP parser has accepted the request. When that parser
refuses it (a request line over 8 KiB: 414; a header over 8 KiB: 431), it queues the
answer, but uvicorn 0.54 never writes it: the client waits for an answer that never comes
and the server holds the socket until the client gives up. The guard writes the answer
and closes the connection.

uvicorn also waits a fixed 10 s for the peer's reply to a close frame; the guard waits
``CLOSE_TIMEOUT``. (A peer that stops reading altogether is released by the kernel: see
``TCP_USER_TIMEOUT`` in ``lessons.kit.server.bind_socket``.)

Use it with ``uvicorn.Config(app, ws=GUARDED)`` or ``uvicorn app:app --ws
lessons.kit.guard:GuardedProtocol``; measured against the plain implementations by
``lessons.kit.implementations``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GUARDED = "lessons.kit.guard:GuardedProtocol"
CLOSE_TIMEOUT = 3.0  # seconds to wait for the peer's close frame after sending ours


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
