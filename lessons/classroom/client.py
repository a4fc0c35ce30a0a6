"""A learner's side of the classroom: report check results and raise a hand.

``wslab check --report``, ``wslab hand`` and the notebook's check cells (``wslab open
--report``) all come here. What is sent: the lesson, each exercise's number, passed or not,
the check's hint, and hands. Never the learner's code.

The first time a name is used, a random secret is made for it and kept in the working copy
(``.wslab/classroom.json``); the classroom gives the name to the first secret it sees, so
nobody else can report under it. Each report asks for a ticket with the join code (lesson
04), opens one WebSocket with it, sends, waits for each acknowledgement, and closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

SECRETS_FILE = Path(".wslab") / "classroom.json"
TIMEOUT = 5.0  # seconds for the ticket, the handshake and each acknowledgement
# `wslab open --report` passes its settings to the notebook's kernel in these.
T = TypeVar("T")
ENVIRONMENT = ("WSLAB_REPORT", "WSLAB_CODE", "WSLAB_NAME", "WSLAB_HOME")


class ClassroomError(Exception):
    """The classroom refused a report, or cannot be reached: one line saying which."""


@dataclass(frozen=True)
class Learner:
    """A learner reporting to the classroom at ``url`` with the join ``code``, as ``name``;
    ``home`` is the working copy that keeps the name's secret."""

    url: str
    code: str
    name: str
    home: Path

    @classmethod
    def from_environment(cls) -> Learner | None:
        """The learner ``wslab open --report`` described to this process, if any."""
        url, code, name, home = (os.environ.get(key, "") for key in ENVIRONMENT)
        return cls(url, code, name, Path(home or ".")) if url else None

    def environment(self) -> dict[str, str]:
        values = (self.url, self.code, self.name, str(self.home.resolve()))
        return dict(zip(ENVIRONMENT, values, strict=True))

    def secret(self) -> str:
        """This name's secret in this working copy, made (and kept) the first time."""
        path = self.home / SECRETS_FILE
        try:
            known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            if self.name not in known:
                known[self.name] = secrets.token_urlsafe(24)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
                path.chmod(0o600)
        except (OSError, ValueError, TypeError) as exc:
            raise ClassroomError(f"cannot keep your name's secret in {path}: {exc}") from None
        return str(known[self.name])

    def _ticket(self) -> str:
        body = {"code": self.code, "name": self.name, "secret": self.secret()}
        request = urllib.request.Request(
            self.url.rstrip("/") + "/ticket",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return str(json.load(response)["ticket"])
        except urllib.error.HTTPError as exc:
            raise ClassroomError(_refusal(exc)) from None
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClassroomError(f"cannot reach the classroom at {self.url}: {reason}") from None

    async def send(self, messages: list[dict[str, Any]]) -> list[int]:
        """Send ``messages`` on one connection; the event id the classroom gave each."""
        ticket = await asyncio.to_thread(self._ticket)
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}/ws/learner?ticket={quote(ticket)}"
        ids = []
        try:
            async with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as websocket:
                for message in messages:
                    await websocket.send(json.dumps(message))
                    ids.append(await _acknowledged(websocket))
        except InvalidStatus as exc:
            raise ClassroomError(f"the classroom refused the connection: {exc}") from None
        except (InvalidHandshake, ConnectionClosed, OSError, TimeoutError) as exc:
            raise ClassroomError(f"the classroom connection failed: {exc!r}") from None
        return ids

    def report(self, lesson: str, results: list[tuple[int, bool, str]]) -> list[int]:
        """Report (exercise, passed, hint) of each check of ``lesson``; waits for the acks."""
        return blocking(self.send([result(lesson, *one) for one in results]))

    def hand(self, kind: str) -> int:
        """Raise a hand: ``stuck`` or ``done``."""
        return blocking(self.send([{"type": "hand", "kind": kind}]))[0]


def result(lesson: str, exercise: int, passed: bool, hint: str) -> dict[str, Any]:
    return {"type": "result", "lesson": lesson, "exercise": exercise, "passed": passed,
            "hint": "" if passed else hint}  # fmt: skip


async def _acknowledged(websocket: Any) -> int:
    """The id in the classroom's acknowledgement; a ping meanwhile gets its pong."""
    while True:
        async with asyncio.timeout(TIMEOUT):
            reply = json.loads(await websocket.recv())
        if reply.get("type") == "ping":
            await websocket.send(json.dumps({"type": "pong"}))
        elif reply.get("type") == "ack":
            return int(reply["id"])
        else:
            raise ClassroomError(str(reply.get("error", reply)))


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read())["detail"]
    except (ValueError, KeyError, OSError):
        detail = exc.reason
    if isinstance(detail, list):  # FastAPI's validation errors: say which field
        detail = "; ".join(f"{item['loc'][-1]}: {item['msg']}" for item in detail)
    return f"the classroom refused: {detail}"


def blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end from plain code, even inside a running event loop (a
    notebook's kernel): then in a thread of its own, joined before returning."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, asyncio.run(work)))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="wslab-classroom-report")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def hand(kind: str = "stuck") -> None:
    """From a notebook opened with ``wslab open ... --report``: raise your hand, ``"stuck"``
    or ``"done"``; the instructor sees it at once and clears it when they come by."""
    learner = Learner.from_environment()
    if learner is None:
        print("not in a classroom: open it with wslab open ... --report URL --code C --name N")
        return
    try:
        learner.hand(kind)
    except ClassroomError as exc:
        print(f"classroom: {exc}")
        return
    print(f"classroom: your hand is up ({kind})")
