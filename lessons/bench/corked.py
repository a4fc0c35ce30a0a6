"""Lesson 05's production app, its senders corked: the variant ``wslab bench`` measures
beside the plain production manager (``SubprocessServer(f"{corked.__file__}:app")``).

A sender task that finds several messages queued corks its socket (``TCP_CORK``), sends
them and uncorks it: they leave in as few TCP segments as they fit, and the client reads
them in one go. What that costs: Linux only, and the socket is reached under ASGI, through
the uvicorn transport that lesson 05's ``KeepTransport`` keeps in the scope; with another
server, or none kept, the sender is the plain one. The app's environment (``BROKER_URL``,
limits) is read as app.py reads it.
"""

import socket

from fastapi import WebSocketDisconnect

from lessons import LESSONS_DIR, load_module

production = load_module(LESSONS_DIR / "05_scaling" / "app.py")
CORK = getattr(socket, "TCP_CORK", None)  # Linux: hold a socket's segments until uncorked


class CorkedConnection(production.Connection):  # type: ignore[misc,name-defined]
    async def sender(self) -> None:
        queue, send = self.queue, self.websocket.send
        transport = self.websocket.scope.get("transport")  # put there by KeepTransport
        sock = transport.get_extra_info("socket") if transport and CORK else None
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
app = production.app
