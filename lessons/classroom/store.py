"""The classroom's state in one SQLite file (the standard library's ``sqlite3``).

Three tables: ``settings`` (the join code and the instructor's secret, made once, so a
classroom started again on the same file keeps both), ``learners`` (each name with a hash
of the secret of the client that took it) and ``events`` (everything that happened, in
order: a result, a raised hand, a cleared hand). An event's id is SQLite's
``AUTOINCREMENT`` key: it only grows, across restarts too, so "send me what came after
id N" works the way lesson 06's resume does. Each write is committed before it is
acknowledged: a restart loses nothing that a learner was told was stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

# No 0/O, 1/I/L: a code read aloud or off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
Event = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learners (name TEXT PRIMARY KEY, secret_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

_UNCLEARED = "id NOT IN (SELECT json_extract(body, '$.hand') FROM events WHERE type = 'cleared')"


class NameTaken(Exception):
    """Another client already took this name (its secret differs)."""


class Full(Exception):
    """The classroom has as many learners as it takes."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    """The classroom's file: settings, learners and the event log."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # One connection, used from the server's event loop thread only: each statement is
        # a few hundred microseconds, shorter than handing it to a thread would be.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of the process
        self.db.executescript(SCHEMA)
        self.code = self._setting("code", lambda: "".join(
            secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)
        ))  # fmt: skip
        self.instructor_secret = self._setting("instructor", lambda: secrets.token_urlsafe(24))

    def _setting(self, key: str, make: Any) -> str:
        self.db.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (key, make()))
        return self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]

    def close(self) -> None:
        self.db.close()

    def code_matches(self, code: str) -> bool:
        return hmac.compare_digest(code.strip().upper().encode(), self.code.encode())

    def instructor_matches(self, secret: str) -> bool:
        return hmac.compare_digest(secret.encode(), self.instructor_secret.encode())

    def claim(self, name: str, secret: str, most: int) -> None:
        """Give ``name`` to the client holding ``secret``, or check that it is that client's
        already; raises NameTaken if it is another's, Full if ``most`` names are taken."""
        row = self.db.execute("SELECT secret_hash FROM learners WHERE name = ?", (name,)).fetchone()
        if row is None:
            if self.db.execute("SELECT count(*) FROM learners").fetchone()[0] >= most:
                raise Full(name)
            self.db.execute("INSERT INTO learners VALUES (?, ?)", (name, _hash(secret)))
        elif not hmac.compare_digest(row[0], _hash(secret)):
            raise NameTaken(name)

    def add(self, event_type: str, name: str, **fields: Any) -> Event:
        """Store an event and return it with its id and server time (``at``, unix seconds)."""
        body = {"type": event_type, "name": name, "at": round(time.time(), 3), **fields}
        cursor = self.db.execute(
            "INSERT INTO events (type, name, body) VALUES (?, ?, ?)",
            (event_type, name, json.dumps(body)),
        )
        return {"id": cursor.lastrowid, **body}

    def after(self, last: int, limit: int = 1000) -> list[Event]:
        """The events after id ``last``, oldest first, at most ``limit`` of them."""
        rows = self.db.execute(
            "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?", (last, limit)
        )
        return [{"id": row[0], **json.loads(row[1])} for row in rows]

    def open_hand(self, name: str, kind: str) -> int | None:
        """The id of ``name``'s raised ``kind`` hand that nobody has cleared yet, if any."""
        row = self.db.execute(
            f"SELECT id FROM events WHERE type = 'hand' AND {_UNCLEARED}"
            " AND name = ? AND json_extract(body, '$.kind') = ? ORDER BY id DESC LIMIT 1",
            (name, kind),
        ).fetchone()
        return row[0] if row else None

    def hand_is_open(self, hand: int) -> bool:
        query = f"SELECT 1 FROM events WHERE type = 'hand' AND {_UNCLEARED} AND id = ?"
        return self.db.execute(query, (hand,)).fetchone() is not None
