"""Failure first, in a few lines: run a broken or fixed app and print only what is observed.

A pitfall section in a notebook runs the broken app, then (after the explanation and the
diff) the fixed one, the same way. These helpers keep each of those cells to a few lines:

- ``observe(app, *messages)`` serves ``app`` on a real uvicorn, sends each message from
  one real client and prints what the client saw: every reply, then how the connection
  ended (the close code and reason; 1006 when no close frame came).
- ``server_log()`` captures uvicorn's log while it is open, so that nothing reaches the
  cell's stderr, and prints one line per record on request.
- ``shows_error()`` runs a block that is expected to raise and prints the exception in two
  lines (what was raised, and the line of the lesson's file it came from) instead of a
  300-line traceback of framework frames. The cell does not fail, so "Run All" goes on in
  every editor.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from websockets.exceptions import ConnectionClosed

from lessons.kit.client import LiveClient, Message
from lessons.kit.server import LiveServer

_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi")
_FRAMEWORK = ("site-packages", "dist-packages", "/lib/python3", "<frozen")


def compact(exc: BaseException) -> str:
    """``KeyError: 'text'`` and the last line of the learner's code it came from.

    "The learner's code" is the innermost frame outside installed packages and the
    standard library: the lesson's app file, or the notebook cell.
    """
    summary = f"{type(exc).__name__}: {exc}".rstrip(": ")
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not any(part in frame.filename for part in _FRAMEWORK)
        and "lessons/kit/" not in frame.filename.replace("\\", "/")
    ]
    if not frames:
        return summary
    last = frames[-1]
    where = Path(last.filename).name if Path(last.filename).exists() else "this cell"
    return f"{summary}\n  raised at {where}, line {last.lineno}: {(last.line or '').strip()}"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname} {record.getMessage().rstrip()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" → {compact(record.exc_info[1]).splitlines()[0]}"
        self.lines.append(line)


@dataclass
class ServerLog:
    """The log lines uvicorn wrote while the capture was open, one line per record."""

    lines: list[str] = field(default_factory=list)

    def print(self, level: str = "WARNING") -> None:
        """Print the records at ``level`` or above (``INFO`` shows handshakes too)."""
        threshold = logging.getLevelName(level)
        for line in self.lines:
            if logging.getLevelName(line.split(" ", 1)[0]) >= threshold:
                print("  server log:", line)

    def __contains__(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@contextmanager
def server_log() -> Iterator[ServerLog]:
    """Capture uvicorn's and FastAPI's log records instead of letting them reach stderr."""
    handler = _Capture()
    saved = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    log = ServerLog(handler.lines)
    try:
        yield log
    finally:
        for logger, propagate, level in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


@dataclass
class Observed:
    """What one client saw: its replies in order, and how the connection ended."""

    replies: list[Message]
    close_code: int | None
    close_reason: str | None
    log: ServerLog

    @property
    def survived(self) -> bool:
        """True if the connection was still open after the last message."""
        return self.close_code is None


async def observe(
    app: Any,
    *messages: Message,
    path: str = "/ws",
    log: bool = False,
    label: str | None = None,
    wait: float = 1.0,
) -> Observed:
    """Serve ``app`` on a real uvicorn, send ``messages`` from one client, print what it saw.

    After each message the client waits up to ``wait`` seconds for a reply. It prints every
    reply, then ``open`` or the close code and reason. With ``log=True`` it also prints the
    server's warnings and errors, one line each. Nothing else reaches the cell's output.
    """
    prefix = f"{label}: " if label else ""
    replies: list[Message] = []
    with server_log() as records, LiveServer(app, log_level="info") as server:
        async with LiveClient(server.ws_url(path)) as client:
            try:
                for message in messages:
                    await client.send(message)
                    try:
                        replies.append(await client.receive(timeout=wait))
                    except TimeoutError:
                        continue
                    print(f"{prefix}← {replies[-1]!r}")
                await client.receive_nothing(within=0.1)
            except (ConnectionClosed, AssertionError):
                pass
            code = client.close_code
            ending = "still open" if code is None else f"closed: {code} {client.close_reason!r}"
            print(f"{prefix}the connection is {ending}")
            seen = Observed(replies, code, client.close_reason, records)
    if log:
        records.print()
    return seen


def _expected_in(
    exc: BaseException, expected: tuple[type[BaseException], ...]
) -> BaseException | None:
    """``exc`` if it is of an ``expected`` type; inside a task group's exception group, the
    first exception of such a type (the one the lesson is about, not its wrapping)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _expected_in(inner, expected)
            if found is not None:
                return found
    return exc if isinstance(exc, expected) else None


class shows_error:  # named like a statement: ``with shows_error():``
    """``with shows_error():`` runs a block that should raise; prints the exception compactly.

    An exception that reaches the cell inside an exception group (from a task group) is
    unwrapped. If the block raises nothing, that is the surprise, and it is reported as an
    AssertionError: a demonstration of an error that no longer happens has gone stale.
    """

    def __init__(self, *expected: type[BaseException]) -> None:
        self.expected = expected or (Exception,)
        self.error: BaseException | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            raise AssertionError("expected an exception here, and nothing was raised")
        found = _expected_in(exc, self.expected)
        if found is None:
            return False
        self.error = found
        print("raised:", compact(found))
        return True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self.__exit__(kind, exc, tb)
