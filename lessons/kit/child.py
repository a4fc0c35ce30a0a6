"""Entry point of a SubprocessServer: ``python -m lessons.kit.child FD PATH:ATTR OPTIONS``.

Serves the app found at PATH:ATTR on the inherited listening socket FD under stock uvicorn
(a ``LiveServer``: ``SERVER_SETTINGS`` and the uvicorn options given as JSON), with uvicorn's
usual log, and prints the ready line once it accepts connections. This process handles the
signals itself: SIGINT, SIGTERM or SIGHUP stop the server gracefully, then the process ends
by that signal, as uvicorn's own does.
An object with a ``serve_socket(sock, on_ready)`` method is a server of its own (the
bench's ``websockets`` baseline): that method serves instead of uvicorn.
"""

import json
import signal
import socket
import sys

from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE

from lessons import load_module
from lessons.kit.cleanup import stop_signals_interrupt
from lessons.kit.server import READY_LINE, LiveServer


def on_ready() -> None:
    print(READY_LINE, flush=True)


def main(argv: list[str]) -> None:
    fd, target, options = argv
    path, _, attribute = target.rpartition(":")
    app = getattr(load_module(path), attribute)
    sock = socket.socket(fileno=int(fd))
    if hasattr(app, "serve_socket"):  # a server of its own, not an ASGI app
        app.serve_socket(sock, on_ready)
        return
    server = LiveServer(app, sock=sock, log_config=LOGGING_CONFIG, **json.loads(options))
    stopped_by = None
    with stop_signals_interrupt():  # each a KeyboardInterrupt, once
        try:
            try:
                server.start(timeout=float("inf"))  # the starting process has its deadline
            except RuntimeError:  # uvicorn has logged why (the app's startup failed)
                sys.exit(STARTUP_FAILURE)
            on_ready()
            server.wait()
        except KeyboardInterrupt as interrupt:
            stopped_by = signal.Signals[str(interrupt)]
        finally:
            server.stop(timeout=60)  # the starting process has its own deadline (SIGKILL)
    if stopped_by is not None:  # end by it, as uvicorn's own process does
        signal.signal(stopped_by, signal.SIG_DFL)
        signal.raise_signal(stopped_by)


if __name__ == "__main__":
    main(sys.argv[1:])
