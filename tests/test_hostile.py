"""Hostile and unlucky clients against every lesson's server, as `wslab serve` starts it.

For each lesson, one `wslab serve NN` process, with its bounds set short so that the
whole module stays bounded (WSLAB_* below). Each case sends what a hostile or unlucky client
sends, and asserts a bounded answer (an HTTP status or a close code), then that the server
holds no socket for that client, and that its memory is back within 10% of where it was.
Loopback only; bounded in count and time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.routing import Match

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import scaled, wire
from lessons.kit.leaks import holds_peer, rss

GUARD = 1.0  # seconds: the servers' bounds here (the kit's default is 10 s, uvicorn's 20 s)
ENV = {
    "WSLAB_TCP_USER_TIMEOUT": str(GUARD),
    "WSLAB_WS_PING": str(GUARD / 2),
}
OVERSIZED = 100_000


@dataclass(frozen=True)
class Target:
    """Where a lesson takes a WebSocket, and, for one that broadcasts, what to say there."""

    path: str
    say: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)


# One WebSocket route per lesson (test_every_target_is_a_websocket_route keeps it true).
TARGETS = {
    "01": Target("/ws/echo"),
    "02": Target("/ws/hostile?name=hostile"),
    "03": Target("/ws/lobby?user=hostile", say={"type": "message", "text": "x" * 900}),
    "04": Target("/ws/first-message"),
    "05": Target(
        "/ws",
        say={"type": "say", "text": "x" * 3000},
        env={"RATE": "1e9", "BURST": "1000000000", "QUEUE_SIZE": "32"},
    ),
}


@dataclass
class Served:
    number: str
    target: Target
    process: subprocess.Popen[str]
    port: int
    baseline: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.target.path}"

    def released(self, client_port: int, timeout: float = 4 * GUARD + 2) -> bool:
        """True once the server holds no socket to ``client_port`` (within ``timeout`` s)."""
        deadline = time.monotonic() + scaled(timeout)
        while holds_peer(self.process.pid, client_port):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)  # /proc offers nothing to wait on
        return True

    def memory_is_back(self) -> bool:
        return rss(self.process.pid) <= self.baseline * 1.1


@pytest.fixture(scope="module", params=sorted(TARGETS))
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    number = request.param
    target = TARGETS[number]
    process = subprocess.Popen(
        [sys.executable, "-m", "lessons", "serve", number, "--port", "0", "--log-level", "error"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **ENV, **target.env},
    )
    try:
        assert process.stdout is not None
        port = 0
        for line in process.stdout:
            port = port or int(next(iter(re.findall(r"127\.0\.0\.1:(\d+)", line)), 0))
            if "ready:" in line:
                break
        assert port, f"wslab serve {number} did not start"
        server = Served(number, target, process, port)
        with wire.raw_socket(server.url) as sock:  # warm up: one ordinary handshake
            wire.upgrade(sock, server.url)
        server.baseline = rss(process.pid)
        yield server
    finally:
        process.terminate()
        process.communicate(timeout=scaled(15))


def check_freed(served: Served, client_port: int) -> None:
    assert served.released(client_port), f"lesson {served.number} still holds the socket"
    assert served.memory_is_back(), f"memory {rss(served.process.pid)} > {served.baseline} + 10%"


def test_every_target_is_a_websocket_route() -> None:
    for number, target in TARGETS.items():
        path = target.path.partition("?")[0]
        scope = {"type": "websocket", "path": path, "root_path": ""}
        routes = find(number).app().routes
        assert any(route.matches(scope)[0] is Match.FULL for route in routes), (number, path)


@pytest.mark.parametrize("where", ["request line", "header"])
def test_an_oversized_handshake_is_answered_and_closed(served: Served, where: str) -> None:
    url, headers = served.url, {"Cookie": "a=" + "b" * OVERSIZED}
    if where == "request line":
        url, headers = url + ("&" if "?" in url else "?") + "token=" + "a" * OVERSIZED, {}
    with wire.raw_socket(url) as sock:
        sock.sendall(wire.upgrade_request(url, headers=headers).encode())
        assert wire.status_of(wire.read_head(sock)) in {400, 414, 431}
        assert wire.closed_by_peer(sock, 2)
        client_port = sock.getsockname()[1]
    check_freed(served, client_port)


def test_a_handshake_that_never_finishes_is_held_until_the_client_goes(served: Served) -> None:
    """uvicorn has no deadline for a request head (claim ``unfinished-head``): it answers
    nothing and holds the socket while the client stays. A proxy in front bounds it (lesson
    06); here, at least, the server lets go the moment that client goes."""
    with wire.raw_socket(served.url) as sock:
        sock.sendall(wire.upgrade_request(served.url).encode()[:30])
        answer = wire.read_head(sock, 2 * GUARD)  # past every bound the server has
        client_port = sock.getsockname()[1]
        held = holds_peer(served.process.pid, client_port)
    claim = CLAIMS["unfinished-head"]
    unanswered = (answer, held) == (None, True)
    claim.expect(claim.eras[-1].behaviour if unanswered else f"answered {answer!r}, held {held}")
    check_freed(served, client_port)


def test_a_silent_peer_is_closed_and_released(served: Served) -> None:
    """A peer that never answers a ping (as a half-open one cannot): the server gives up."""
    with wire.raw_socket(served.url) as sock:
        wire.upgrade(sock, served.url)
        client_port = sock.getsockname()[1]
        assert served.released(client_port)  # the client never reads, never pongs
        code = wire.read_until_close(sock, 2)
    assert code in {1000, 1001, 1006, 1008, 1011}
    check_freed(served, client_port)


@pytest.mark.parametrize(
    "frame",
    [
        wire.frame(0x3, b"reserved opcode"),
        wire.frame(wire.CONTINUATION, b"no message to continue"),
        b"\x81\x05hello",  # unmasked: a server must refuse it
    ],
    ids=["reserved opcode", "stray continuation", "unmasked"],
)
def test_an_invalid_frame_is_closed_with_1002(served: Served, frame: bytes) -> None:
    with wire.raw_socket(served.url) as sock:
        wire.upgrade(sock, served.url)
        sock.sendall(frame)
        assert wire.read_until_close(sock, 3) == 1002
        client_port = sock.getsockname()[1]
    check_freed(served, client_port)


def test_a_message_over_the_limit_is_closed_with_1009(served: Served) -> None:
    """A frame announcing 64 MiB: refused from its header, before any of it is buffered."""
    with wire.raw_socket(served.url) as sock:
        wire.upgrade(sock, served.url)
        sock.sendall(b"\x81\xff" + (64 << 20).to_bytes(8, "big") + os.urandom(4) + b"x" * 1024)
        assert wire.read_until_close(sock, 3) == 1009
        client_port = sock.getsockname()[1]
    check_freed(served, client_port)


def test_a_client_that_stops_reading_is_dropped_and_released(served: Served) -> None:
    """The hub gives up on it; its socket, full of unsent data, goes when TCP_USER_TIMEOUT
    finds nothing acknowledged (a plain uvicorn would hold it as long as the peer lives)."""
    if served.target.say is None:
        pytest.skip(f"lesson {served.number} does not broadcast on {served.target.path}")
    message = json.dumps(served.target.say)
    with ExitStack() as stack:
        stalled = stack.enter_context(wire.raw_socket(served.url, rcvbuf=4096))
        wire.upgrade(stalled, served.url)
        client_port = stalled.getsockname()[1]
        talkers = []
        for _ in range(4):
            sock = stack.enter_context(wire.raw_socket(served.url))
            wire.upgrade(sock, served.url)
            talkers.append(sock)
        frame = wire.frame(wire.TEXT, message.encode())
        for _ in range(150):  # 600 messages: far more than any queue and socket buffer hold
            for sock in talkers:
                with contextlib.suppress(OSError):  # talkers read nothing either: may be dropped
                    sock.sendall(frame)
        assert served.released(client_port)  # while it still stalls
    check_freed(served, client_port)
