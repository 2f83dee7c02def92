"""What one API process lets each client hold open, and the pace of its live-event work.

- **Caps**: WebSockets per client address, subscriptions without a viewer per address (a
  viewer's are counted against the viewer's connections instead), subscriptions per
  connection. Over a cap is ``RATE_LIMITED`` (no ``retryAfter``: a place frees up when one
  of the client's own ends). The caps are per process, since what they protect is this
  process's event loop: a client whose sockets a load balancer spreads over N processes
  may hold N times as much. The per-address caps are off with ``RATE_LIMITS_ENABLED``.
- **Pace**: at most ``live_event_concurrency`` live events are being hydrated, executed
  and sent at once; the others wait their turn. One like on a tweet 10,000 clients watch
  used to wake 10,000 tasks that advanced in lockstep with the request that caused it,
  each of whose awaits then waited behind all of them (11 s for the like's answer); now
  the request waits behind a handful at most, and the watchers' events follow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from starling.config import Settings
from starling.resolvers.errors import RateLimited

# No event's turn lasts longer: a client that stops reading its socket (a send that waits
# for the peer) must not hold a place that every other watcher needs.
TURN_LEASE_SECONDS = 1.0


class Tally:
    """How many of one thing each key (a client address) holds, up to ``cap`` (None: no cap)."""

    def __init__(self, cap: int | None, refusal: str) -> None:
        self.cap = cap
        self._refusal = refusal
        self._held: dict[str, int] = {}

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def check(self, key: str | None) -> None:
        """RATE_LIMITED when ``key`` holds ``cap`` already; a key of None (an unknown
        address) is never counted."""
        if key is not None and self.cap is not None and self.held(key) >= self.cap:
            raise RateLimited(self._refusal.format(cap=self.cap))

    @contextlib.contextmanager
    def hold(self, key: str | None) -> Iterator[None]:
        """Hold one for the block (``check`` first)."""
        self.acquire(key)
        try:
            yield
        finally:
            self.release(key)

    def acquire(self, key: str | None) -> None:
        """Hold one until ``release`` (``check`` first): ``hold`` for a record's lifetime."""
        self.check(key)
        if key is not None:
            self._held[key] = self.held(key) + 1

    def release(self, key: str | None) -> None:
        if key is None or key not in self._held:
            return
        self._held[key] -= 1
        if not self._held[key]:
            del self._held[key]


class EventPace:
    """Turns for live-event work: ``concurrency`` at once, each at most TURN_LEASE_SECONDS."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        await self._slots.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        lease = asyncio.get_running_loop().call_later(TURN_LEASE_SECONDS, release)
        try:
            yield
        finally:
            lease.cancel()
            release()


@dataclass
class LiveCapacity:
    """The process's caps and pace (one per API process, shared by its connections)."""

    sockets: Tally
    anonymous_subscriptions: Tally
    subscriptions_per_connection: int
    pace: EventPace

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveCapacity:
        per_address = settings.rate_limits_enabled
        return cls(
            sockets=Tally(
                settings.ws_sockets_per_address if per_address else None,
                "Your address holds {cap} WebSockets to this server already; close one first.",
            ),
            anonymous_subscriptions=Tally(
                settings.ws_anonymous_subscriptions_per_address if per_address else None,
                "Your address holds {cap} subscriptions without signing in already; end one or sign in.",
            ),
            subscriptions_per_connection=settings.ws_subscriptions_per_connection,
            pace=EventPace(settings.live_event_concurrency),
        )

    def connection_tally(self) -> Tally:
        """A fresh count for one connection's subscriptions."""
        return Tally(
            self.subscriptions_per_connection,
            "This connection holds {cap} subscriptions already; end one first.",
        )
