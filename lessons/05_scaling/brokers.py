"""The brokers of app.py: where a process publishes each event, and reads everyone's.

``open_broker(BROKER_URL)``: ``memory://`` keeps events in this process (P18); with
``redis://host:port/0`` they go to a Redis Stream that every process reads (P29). A broker
has publish(event) -> id, last_id(), read(after) that waits for events after an id,
history(after) that replays them, and close(); ``errors`` is what an outage raises.
"""

import asyncio
import itertools
import json
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

STREAM, HISTORY = "wslab:room", 1000  # the Redis Stream, and how many events it keeps
Event = dict[str, Any]


def id_key(event_id: str) -> tuple[int, int]:
    """Stream ids ``"<ms>-<seq>"`` compare as pairs of numbers."""
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


class MemoryBroker:
    """This process only: enough for one process, blind to every other one (P18)."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self.events: deque[tuple[str, Event]] = deque(maxlen=HISTORY)
        self.seq = 0
        self.published = asyncio.Event()

    async def publish(self, event: Event) -> str:
        self.seq += 1
        self.events.append((f"0-{self.seq}", event))
        self.published.set()
        self.published = asyncio.Event()
        return f"0-{self.seq}"

    async def last_id(self) -> str:
        return f"0-{self.seq}"

    async def history(self, after: str) -> list[tuple[str, Event]]:
        first = self.seq - len(self.events) + 1  # the events kept are numbered first..seq
        return list(itertools.islice(self.events, max(0, id_key(after)[1] - first + 1), None))

    async def read(self, after: str) -> list[tuple[str, Event]]:
        published = self.published
        if found := await self.history(after):
            return found
        await published.wait()
        return await self.history(after)

    async def close(self) -> None:
        pass


class RedisBroker:
    """A Redis Stream: every process reads all of it; ids let a reader resume (P29)."""

    errors = (RedisConnectionError, RedisTimeoutError, OSError)

    def __init__(self, url: str) -> None:  # fail fast: pump() does its own reconnecting
        retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 1)
        self.redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=1, retry=retry
        )

    async def publish(self, event: Event) -> str:
        return await self.redis.xadd(STREAM, {"event": json.dumps(event)}, maxlen=HISTORY)

    async def last_id(self) -> str:
        newest = await self.redis.xrevrange(STREAM, count=1)
        return newest[0][0] if newest else "0-0"

    async def history(self, after: str) -> list[tuple[str, Event]]:
        entries = await self.redis.xrange(STREAM, min=f"({after}")
        return [(event_id, json.loads(fields["event"])) for event_id, fields in entries]

    async def read(self, after: str) -> list[tuple[str, Event]]:
        reply = await self.redis.xread({STREAM: after}, block=1000, count=500)
        return [(i, json.loads(fields["event"])) for i, fields in reply[0][1]] if reply else []

    async def close(self) -> None:
        await self.redis.aclose()


def open_broker(url: str) -> MemoryBroker | RedisBroker:
    """The broker ``url`` names: ``memory://``, or ``redis://`` (``rediss://``, ``unix://``)."""
    scheme = url.partition("://")[0]
    if scheme not in {"memory", "redis", "rediss", "unix"}:
        raise ValueError(f"BROKER_URL must be memory:// or redis://..., not {url!r}")
    return MemoryBroker() if scheme == "memory" else RedisBroker(url)
