"""The classroom: learners report their checks and hands; the instructor's page sees them live.

Built from the course's own patterns, so that learners recognise them:

- lesson 04: the join code buys a short-lived, single-use ticket (``POST /ticket``), and the
  socket is opened with it (``/ws/learner?ticket=...``); refusals happen before accept, as
  an HTTP status with a reason; the instructor's page checks its Origin;
- lesson 05: a message over ``max_bytes`` is closed with 1009, a client over its rate with
  1008 (``client_guards.py``'s token bucket), a silent one dropped with no close frame
  (1006) after a ping it did not answer, a page that falls behind with 1013;
- lesson 06: every event has an id that only grows; the instructor's page reconnects with
  ``?last=<id>`` and gets what it missed, then the live events, each once.

A learner's name belongs to the client that first used it: the ticket request carries a
secret that the client keeps in its working copy; another secret for the same name is
refused. Only the instructor's secret buys an instructor ticket (to watch, and clear hands).
Learners send results, hints and hands, never code. State lives in ``store.Store`` (SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from lessons import find, load_module
from lessons.classroom.checks import exercise_counts
from lessons.classroom.store import Event, Full, NameTaken, Store

HERE = Path(__file__).parent
DATA_ENV, DATA_FILE = "WSLAB_CLASSROOM_DATA", "wslab-classroom.sqlite3"
GUARDS = load_module(find("05").path / "client_guards.py")  # lesson 05's, as learners saw it
GONE = (WebSocketDisconnect, RuntimeError, OSError)  # the peer left while we sent (lesson 05)
NAME = re.compile(r"^[^\x00-\x1f<>&\"']{1,40}$")  # short, printable, plain text on any page


@dataclass
class Settings:
    heartbeat: float = 15.0  # a silent client is pinged after this many seconds...
    silence: float = 10.0  # ...and dropped (no close frame) if it then stays silent this long
    ticket_seconds: float = 30.0  # a ticket not used within this is refused
    max_bytes: int = 4096  # bigger messages: 1009
    rate: float = 5.0  # messages per second a learner may send...
    burst: int = 40  # ...and at once; beyond: 1008
    queue: int = 2048  # events a page may fall behind before 1013 (it then resumes)
    quiet_after: float = 600.0  # the page shows a learner as gone quiet after this long
    learners: int = 500  # names a classroom takes; then 403
    tickets: int = 10_000  # tickets outstanding at once; then 503
    close_seconds: float = 1.0  # a close frame may take this long to get out


class TicketRequest(BaseModel):
    code: str = Field(max_length=64)
    name: str
    secret: str = Field(min_length=16, max_length=128)

    @field_validator("name")
    @classmethod
    def printable(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("a name is 1 to 40 characters, without < > & \" ' or control ones")
        return name


class InstructorTicketRequest(BaseModel):
    secret: str = Field(max_length=128)


class Result(BaseModel):
    type: Literal["result"]
    lesson: str = Field(max_length=64)
    exercise: int
    passed: bool
    hint: str = Field("", max_length=1000)


class Hand(BaseModel):
    type: Literal["hand"]
    kind: Literal["stuck", "done"]


class Clear(BaseModel):
    type: Literal["clear"]
    hand: int


class Pong(BaseModel):
    type: Literal["pong"]


LEARNER_MESSAGE = TypeAdapter(Annotated[Result | Hand | Pong, Field(discriminator="type")])
INSTRUCTOR_MESSAGE = TypeAdapter(Annotated[Clear | Pong, Field(discriminator="type")])


@dataclass
class Tickets:
    """Single-use tickets: ticket -> (role, learner name, valid until)."""

    seconds: float
    most: int = 10_000
    held: dict[str, tuple[str, str, float]] = field(default_factory=dict)

    def issue(self, role: str, name: str) -> str:
        now = time.monotonic()
        self.held = {t: held for t, held in self.held.items() if held[2] > now}
        if len(self.held) >= self.most:  # bounded, whoever asks
            raise HTTPException(503, "too many tickets outstanding: try again in a minute")
        ticket = secrets.token_urlsafe(24)
        self.held[ticket] = (role, name, now + self.seconds)
        return ticket

    def redeem(self, ticket: str, role: str) -> str:
        held_role, name, until = self.held.pop(ticket, ("", "", 0.0))  # works once
        if held_role != role:
            raise HTTPException(403, "unknown or already used ticket")
        if until <= time.monotonic():
            raise HTTPException(403, "ticket expired")
        return name


class Closing(Exception):
    """Close this connection with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class Classroom:
    """What the server holds: the store, the settings, the tickets and the open pages."""

    store: Store
    settings: Settings
    lessons: dict[str, int]
    tickets: Tickets
    pages: set[asyncio.Queue[Event | None]] = field(default_factory=set)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every instructor page; a page that fell behind is dropped."""
        for queue in list(self.pages):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.pages.discard(queue)  # its sender sees the None below and closes 1013
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)


def own_origin(websocket: WebSocket) -> str:
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    return f"{scheme}://{websocket.headers.get('host')}"


async def receive_text(websocket: WebSocket, settings: Settings, ping: Callable[[], Any]) -> str:
    """The next text message, within the limits; after ``heartbeat`` seconds of silence a
    ping (``ping()`` sends it), then ``silence`` seconds for any answer (lesson 05)."""
    message: dict[str, Any] | None = None
    for wait, last_chance in ((settings.heartbeat, False), (settings.silence, True)):
        try:
            async with asyncio.timeout(wait):
                message = await websocket.receive()
            break
        except TimeoutError:
            if last_chance:
                raise Closing(1011, "heartbeat timeout") from None
            await ping()
    assert message is not None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise Closing(1003, "text frames only")
    if len(text.encode()) > settings.max_bytes:
        raise Closing(1009, f"message over {settings.max_bytes} bytes")
    return text


async def finish(websocket: WebSocket, room: Classroom, closing: Closing) -> None:
    """Close as lesson 05 does: bounded, and no wait for a peer that is gone."""
    await GUARDS.close(websocket, closing.code, closing.reason, room.settings.close_seconds)


def redeem(websocket: WebSocket, ticket: str, role: str) -> str:
    """Before accept: the Origin (a browser always sends its page's; the learners' Python
    clients send none), then the ticket. A refusal is an HTTP 403 with the reason."""
    origin = websocket.headers.get("origin")
    if (origin is not None or role == "instructor") and origin != own_origin(websocket):
        raise HTTPException(403, f"origin not allowed: {origin}")
    room: Classroom = websocket.app.state.classroom
    return room.tickets.redeem(ticket, role)


def learner_name(websocket: WebSocket, ticket: str = "") -> str:
    return redeem(websocket, ticket, "learner")


def instructor_access(websocket: WebSocket, ticket: str = "") -> str:
    return redeem(websocket, ticket, "instructor")


def from_environment() -> FastAPI:
    """The classroom on the SQLite file named by ``WSLAB_CLASSROOM_DATA`` (default: the one
    ``wslab classroom`` uses), closed when the server stops: what
    ``uvicorn --factory lessons.classroom.app:from_environment`` serves."""
    store = Store(os.environ.get(DATA_ENV, DATA_FILE))

    @contextlib.asynccontextmanager
    async def closing(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    return create_app(store, lifespan=closing)


def create_app(store: Store, settings: Settings | None = None, **fastapi: Any) -> FastAPI:
    """The classroom's ASGI app on ``store`` (the caller opens it and closes it, unless a
    ``lifespan`` given here does)."""
    settings = settings or Settings()
    tickets = Tickets(settings.ticket_seconds, settings.tickets)
    room = Classroom(store, settings, exercise_counts(), tickets)
    app = FastAPI(
        title="wslab classroom", docs_url=None, redoc_url=None, openapi_url=None, **fastapi
    )
    app.state.classroom = room

    @app.get("/")
    async def about() -> dict[str, Any]:
        return {"classroom": "wslab", "lessons": room.lessons}

    @app.get("/instructor")
    async def instructor_page() -> FileResponse:
        return FileResponse(HERE / "instructor.html")

    @app.post("/ticket")
    async def learner_ticket(request: TicketRequest) -> dict[str, Any]:
        if not store.code_matches(request.code):
            raise HTTPException(403, "wrong join code")
        try:
            store.claim(request.name, request.secret, settings.learners)
        except NameTaken:
            taken = f"the name {request.name!r} is taken by another learner"
            raise HTTPException(409, taken) from None
        except Full:
            raise HTTPException(403, f"the classroom is full ({settings.learners})") from None
        ticket = room.tickets.issue("learner", request.name)
        return {"ticket": ticket, "expires_in": settings.ticket_seconds}

    @app.post("/instructor/ticket")
    async def instructor_ticket(request: InstructorTicketRequest) -> dict[str, Any]:
        if not store.instructor_matches(request.secret):
            raise HTTPException(403, "wrong instructor secret")
        return {
            "ticket": room.tickets.issue("instructor", ""),
            "expires_in": settings.ticket_seconds,
        }

    @app.websocket("/ws/learner")
    async def learner(websocket: WebSocket, name: Annotated[str, Depends(learner_name)]) -> None:
        await websocket.accept()
        bucket = GUARDS.TokenBucket(settings.rate, settings.burst)
        try:
            while True:
                text = await receive_text(
                    websocket, settings, lambda: websocket.send_json({"type": "ping"})
                )
                if not bucket.take():
                    raise Closing(1008, f"rate limit: {settings.rate:g} messages/s")
                reply = learner_message(room, name, text)
                if reply is not None:
                    await websocket.send_json(reply)
        except GONE:
            pass
        except Closing as closing:
            await finish(websocket, room, closing)

    @app.websocket("/ws/instructor")
    async def instructor(
        websocket: WebSocket, _: Annotated[str, Depends(instructor_access)], last: int = 0
    ) -> None:
        await websocket.accept()
        queue: asyncio.Queue[Event | None] = asyncio.Queue(settings.queue)
        room.pages.add(queue)  # from now on live events queue up for this page
        welcome = {
            "type": "welcome",
            "lessons": room.lessons,
            "quiet_after": settings.quiet_after,
            "now": time.time(),
        }
        tasks = [
            asyncio.create_task(send_events(websocket, room, queue, last, welcome)),
            asyncio.create_task(instructor_messages(websocket, room, queue)),
        ]
        try:
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            problem = next((t.exception() for t in done if t.exception()), None)
            if isinstance(problem, Closing):
                await finish(websocket, room, problem)
            elif problem is not None and not isinstance(problem, GONE):
                raise problem
        finally:
            room.pages.discard(queue)

    return app


def learner_message(room: Classroom, name: str, text: str) -> dict[str, Any] | None:
    """Handle one message from learner ``name``; the reply: an ack with the event's id, an
    error that says what to send instead, or none (to a pong)."""
    try:
        message = LEARNER_MESSAGE.validate_json(text)
    except ValidationError as exc:
        return {"type": "error", "error": f"bad message: {exc.errors()[0]['msg']}"}
    if isinstance(message, Pong):
        return None
    if isinstance(message, Hand):
        hand = room.store.open_hand(name, message.kind)
        if hand is None:
            event = room.store.add("hand", name, kind=message.kind)
            room.publish(event)
            hand = event["id"]
        return {"type": "ack", "id": hand}
    exercises = room.lessons.get(message.lesson)
    if exercises is None:
        return {"type": "error", "error": f"this classroom has no lesson {message.lesson!r}"}
    if not 1 <= message.exercise <= exercises:
        return {"type": "error", "error": f"{message.lesson} has exercises 1 to {exercises}"}
    hint = "" if message.passed else message.hint
    event = room.store.add(
        "result",
        name,
        lesson=message.lesson,
        exercise=message.exercise,
        passed=message.passed,
        hint=hint,
    )
    room.publish(event)
    return {"type": "ack", "id": event["id"]}


async def send_events(
    websocket: WebSocket,
    room: Classroom,
    queue: asyncio.Queue[Event | None],
    last: int,
    welcome: Event,
) -> None:
    """The welcome, what the page missed after ``last`` (from the store), then the live
    events, each exactly once: a live event already replayed is skipped by its id."""
    await websocket.send_json(welcome)
    while missed := room.store.after(last):
        for event in missed:
            await websocket.send_json(event)
            last = event["id"]
    while True:
        event = await queue.get()
        if event is None:
            raise Closing(1013, "too far behind: reconnect and resume")
        if event.get("id", last + 1) > last:
            last = event.get("id", last)
            await websocket.send_json(event)


async def instructor_messages(
    websocket: WebSocket, room: Classroom, queue: asyncio.Queue[Event | None]
) -> None:
    """The page's messages: clearing a hand, and pongs."""

    async def ping() -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait({"type": "ping", "now": time.time()})

    while True:
        text = await receive_text(websocket, room.settings, ping)
        try:
            message = INSTRUCTOR_MESSAGE.validate_json(text)
        except ValidationError:
            continue
        if isinstance(message, Clear) and room.store.hand_is_open(message.hand):
            room.publish(room.store.add("cleared", "", hand=message.hand))
