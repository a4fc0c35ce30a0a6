"""Helpers for the notebooks and the tests. Lesson apps never import this package.

- ``LiveServer``: an ASGI app under a real uvicorn in a background thread.
- ``SubprocessServer``: an app file under uvicorn in its own process.
- ``LiveClient``: a ``websockets`` client with timeouts and a printed transcript.
- ``stalled_client``: a raw client that completes the handshake, then never reads.
- ``handshake_status``: the HTTP status a server answers a WebSocket handshake with.
- ``eventually``: poll a condition with a deadline, for state nothing can be awaited on.
- ``show``, ``show_diff``: print a lesson file, or a pitfall beside its fix, read from disk.
- ``observe``, ``server_log``, ``shows_error``: failure-first cells in a few quiet lines.
- ``stop_all``: stop every server the kit started (a notebook's "I am done").
"""

from lessons.kit.cleanup import stop_all
from lessons.kit.client import LiveClient, handshake_status, stalled_client
from lessons.kit.observe import observe, server_log, shows_error
from lessons.kit.server import LiveServer, SubprocessServer, bind_socket
from lessons.kit.show import show, show_diff
from lessons.kit.timing import eventually, scaled

__all__ = [
    "LiveClient",
    "LiveServer",
    "SubprocessServer",
    "bind_socket",
    "eventually",
    "handshake_status",
    "observe",
    "scaled",
    "server_log",
    "show",
    "show_diff",
    "shows_error",
    "stalled_client",
    "stop_all",
]
