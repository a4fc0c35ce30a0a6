"""What a server still holds for its clients, read from outside with Linux's ``ss``.

A client sees close codes; it cannot see a socket the server keeps open after giving up
on it, nor the bytes queued in it. ``ss`` can: ``server_sockets(port)`` lists the TCP
connections whose local port is the server's (its listening socket left out), with their
state and how many bytes wait in the kernel to be sent. Linux only: elsewhere
``HAVE_SS`` is False and notebooks say so instead of reading.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

HAVE_SS = shutil.which("ss") is not None


@dataclass(frozen=True)
class TcpSocket:
    """One TCP connection as ``ss`` shows it, seen from the server's side."""

    state: str  # ESTAB, CLOSE-WAIT, FIN-WAIT-1...
    unsent: int  # bytes in the kernel's send queue, not yet acknowledged by the peer
    peer_port: int
    owned: bool  # a process holds it; without one it is an orphan the kernel finishes alone

    def __str__(self) -> str:
        owner = "held by the server" if self.owned else "the kernel's alone"
        return f"{self.state}, {self.unsent:,} bytes unsent, {owner}"


def server_sockets(port: int) -> list[TcpSocket]:
    """The connections on local port ``port`` (not the listening socket), from ``ss -tanp``."""
    if not HAVE_SS:
        raise RuntimeError("`ss` is not available: reading sockets needs Linux's iproute2")
    lines = subprocess.run(
        ["ss", "-tanpH", "state", "all", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.splitlines()
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 5 or fields[0] == "LISTEN":
            continue
        found.append(
            TcpSocket(
                state=fields[0],
                unsent=int(fields[2]),
                peer_port=int(fields[4].rsplit(":", 1)[1]),
                owned="users:" in line,
            )
        )
    return found
