"""Lesson 05's production app, its senders corked: the variant ``wslab bench`` measures
beside the plain production manager (``SubprocessServer(f"{corked.__file__}:app")``).

A sender task that finds several messages queued corks its socket (``TCP_CORK``), sends
them and uncorks it: they leave in as few TCP segments as they fit, and the client reads
them in one go. What that costs: Linux only, uvicorn only, and the socket is reached under
ASGI, through the transport that ``KeepTransport`` keeps in the scope (ASGI has no way to
it, which is why lesson 05's app.py does not cork). The app's environment (``BROKER_URL``,
limits) is read as app.py reads it.
"""

import socket

from fastapi import WebSocketDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from lessons import LESSONS_DIR, load_module

production = load_module(LESSONS_DIR / "05_scaling" / "app.py")
CORK = getattr(socket, "TCP_CORK", None)  # Linux: hold a socket's segments until uncorked


class KeepTransport:
    """With uvicorn, ``send`` is a method of the connection's protocol object, which holds the
    transport: keep it in the scope, for the senders to cork its socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope["transport"] = send.__self__.transport  # type: ignore[attr-defined]
        await self.app(scope, receive, send)


class CorkedConnection(production.Connection):  # type: ignore[misc,name-defined]
    async def sender(self) -> None:
        queue, send = self.queue, self.websocket.send
        transport = self.websocket.scope["transport"]  # put there by KeepTransport
        sock = transport.get_extra_info("socket") if CORK else None
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                corked = sock is not None and len(queue) > 1
                if corked:  # what is queued now leaves in as few TCP segments as it fits
                    sock.setsockopt(socket.IPPROTO_TCP, CORK, 1)
                while queue:
                    key, text = queue.popleft()
                    if key is None or key > self.sent:
                        await send({"type": "websocket.send", "text": text})
                if corked:
                    sock.setsockopt(socket.IPPROTO_TCP, CORK, 0)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client is gone: returning ends the handler


production.Connection = CorkedConnection  # the room handler creates these now
production.app.add_middleware(KeepTransport)
app = production.app
