"""Entry point of a SubprocessServer: ``python -m lessons.kit.child FD PATH:ATTR OPTIONS``.

Serves the app found at PATH:ATTR on the inherited listening socket FD with uvicorn
options given as JSON, and prints the ready line once it accepts connections.
"""

import json
import socket
import sys

from lessons import load_module
from lessons.kit.server import READY_LINE, serve_forever


def main(argv: list[str]) -> None:
    fd, target, options = argv
    path, _, attribute = target.rpartition(":")
    app = getattr(load_module(path), attribute)
    sock = socket.socket(fileno=int(fd))
    serve_forever(app, sock, on_ready=lambda: print(READY_LINE, flush=True), **json.loads(options))


if __name__ == "__main__":
    main(sys.argv[1:])
