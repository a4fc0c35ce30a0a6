"""Entry point of a SubprocessServer: ``python -m lessons.kit.child FD PATH:ATTR OPTIONS``.

Serves the app found at PATH:ATTR on the inherited listening socket FD with uvicorn
options given as JSON, and prints the ready line once it accepts connections. After a
graceful shutdown on a signal, the process ends by that signal, as uvicorn's own does.
An object with a ``serve_socket(sock, on_ready)`` method is a server of its own (the
bench's ``websockets`` baseline): that method serves instead of uvicorn.
"""

import json
import signal
import socket
import sys

from lessons import load_module
from lessons.kit.server import READY_LINE, serve_forever


def main(argv: list[str]) -> None:
    fd, target, options = argv
    path, _, attribute = target.rpartition(":")
    app = getattr(load_module(path), attribute)
    sock = socket.socket(fileno=int(fd))

    def on_ready() -> None:
        print(READY_LINE, flush=True)

    if hasattr(app, "serve_socket"):  # a server of its own, not an ASGI app
        app.serve_socket(sock, on_ready)
        return
    stopped_by = serve_forever(app, sock, on_ready=on_ready, **json.loads(options))
    if stopped_by is not None:
        signal.signal(stopped_by, signal.SIG_DFL)
        signal.raise_signal(stopped_by)


if __name__ == "__main__":
    main(sys.argv[1:])
