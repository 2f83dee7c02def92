"""Datastore round-trip accounting.

Every MongoDB command (PyMongo command monitoring, or the embedded engine's equivalent
events) and every Redis round trip (one packed send: a command or a whole pipeline) is
counted twice: in process-wide Prometheus counters for ``/metrics``, and in the
``RoundTrips`` of the current context, which tests and the benchmark probe use to show
that a feed page costs the same whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring
from redis.asyncio.connection import Connection

from starling.store.metrics import MONGO_COMMANDS, REDIS_ROUND_TRIPS


@dataclass
class RoundTrips:
    mongo: int = 0
    redis: int = 0
    mongo_commands: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.mongo + self.redis


_current: ContextVar[RoundTrips | None] = ContextVar("starling_round_trips", default=None)


@contextmanager
def count_round_trips() -> Iterator[RoundTrips]:
    """Count the round trips made by this context and the tasks it starts."""
    trips = RoundTrips()
    token = _current.set(trips)
    try:
        yield trips
    finally:
        _current.reset(token)


class MongoCommandCounter(monitoring.CommandListener):
    """A PyMongo command listener; the embedded engine calls it the same way."""

    def started(self, event: Any) -> None:
        MONGO_COMMANDS.labels(event.command_name).inc()
        trips = _current.get()
        if trips is not None:
            trips.mongo += 1
            trips.mongo_commands.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


class CountingConnection(Connection):
    """redis-py connection that counts each packed send (a command or a pipeline).

    The handshake of a new pooled connection (``CLIENT SETINFO``, ``SELECT``...) is not
    counted: it is the pool's cost, paid whenever concurrent work grows the pool, not a
    round trip of the request that happens to open the connection."""

    _handshaking = False

    async def on_connect(self) -> None:
        self._handshaking = True
        try:
            await super().on_connect()
        finally:
            self._handshaking = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._handshaking:
            REDIS_ROUND_TRIPS.inc()
            trips = _current.get()
            if trips is not None:
                trips.redis += 1
        await super().send_packed_command(command, check_health)
