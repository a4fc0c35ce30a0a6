"""Entry point of a SubprocessServer: ``python -m lessons.kit.child FD PATH:ATTR OPTIONS``.

Serves the app found at PATH:ATTR on the inherited listening socket FD with stock uvicorn
(``SERVER_SETTINGS`` and the uvicorn options given as JSON), and prints the ready line once
it accepts connections. uvicorn's own signal handling stops it: SIGTERM or SIGINT, a graceful
shutdown, after which the process ends by that signal. (It runs in a session of its own, so
a closed terminal's SIGHUP never reaches it: the program that started it stops it.)
An object with a ``serve_socket(sock, on_ready)`` method is a server of its own (the
bench's ``websockets`` baseline): that method serves instead of uvicorn.
"""

import json
import signal
import socket
import sys
import threading

import uvicorn

from lessons import load_module
from lessons.kit.server import READY_LINE, SERVER_SETTINGS, wait_started


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
    server = uvicorn.Server(uvicorn.Config(app, **{**SERVER_SETTINGS, **json.loads(options)}))
    announce = threading.Thread(
        target=lambda: wait_started(server, lambda: True, float("inf")) and on_ready(),
        daemon=True,  # the process ends with its server, started or not
    )
    announce.start()
    # uvicorn raises the signal it stopped on again once it is done: SIGINT's default
    # handler would make that a KeyboardInterrupt (a traceback); the system's ends the process.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    server.run(sockets=[sock])  # in the main thread: uvicorn catches SIGTERM and SIGINT here


if __name__ == "__main__":
    main(sys.argv[1:])
