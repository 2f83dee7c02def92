"""Presence: which users hold a live subscription of one kind, in ZSETs shared by all
processes (a user's shard of the set, ``store.keys``) and scored by expiry time, so the
fan-out can skip offline followers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from starling.store.redis import queue_script

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many channels one SUBSCRIBE / UNSUBSCRIBE names, or members one presence renewal
# writes: bounds a command's size when thousands of clients connect at once.
NAMES_PER_COMMAND = 500
# A presence is renewed this many times per TTL, so renewals may fail or run late twice in a
# row before a viewer who is still there looks offline.
RENEWALS_PER_TTL = 3

# KEYS[1] a presence ZSET; ARGV[1] TTL in seconds; ARGV[2..] user IDs. Prunes expired members,
# then marks the users present until now + TTL by the Redis clock (one clock for every API
# process and worker), never moving an expiry back (GT: a process configured with a shorter
# TTL cannot cut short another's renewal). Returns how many users it marked.
_MARK_PRESENT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if #ARGV < 2 then return 0 end
local expiry = now + tonumber(ARGV[1])
local scored = {}
for i = 2, #ARGV do
  scored[#scored + 1] = expiry
  scored[#scored + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], 'GT', unpack(scored))
return #ARGV - 1
"""


class Presence:
    """This process's share of a presence set: the users holding a live subscription of one
    kind here, kept in ZSETs shared by all processes (``key_of(user)``: the user's shard of
    the set, e.g. ``Keys.feed_presence``) with score = the time each entry expires.

    A user is marked present when a subscription starts, and while this process holds anyone
    a task renews every local holder every ``ttl / RENEWALS_PER_TTL`` seconds (one command
    per ``NAMES_PER_COMMAND`` users, all in one pipeline), so the entry of a process that
    died, or lost Redis, expires by itself within the TTL; every write also prunes expired
    entries.

    Nothing is removed when a subscription ends: another process may still hold one for the
    same user, which only its own renewals know, so the entry is left to expire. The cost of
    that choice is at most one ``PUBLISH`` nobody hears per tweet for up to a TTL; the cost
    of removing it could be a subscriber who hears nothing until its process renews. Marking
    is best effort: while Redis is down no event reaches anyone anyway, and the next renewal
    marks everyone again.
    """

    def __init__(self, redis: Redis, name: str, key_of: Callable[[int], str], ttl_seconds: float) -> None:
        self.name = name
        self.key_of = key_of
        self._ttl = ttl_seconds
        self._held: dict[int, int] = {}  # user ID -> local subscriptions holding it
        self._redis = redis
        self._renewer: asyncio.Task[None] | None = None

    @property
    def holders(self) -> frozenset[int]:
        """Users this process holds present."""
        return frozenset(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        """Hold ``user_id`` present for as long as the block runs (marked before it starts)."""
        try:
            await self.acquire(user_id)
            yield
        finally:
            self.release(user_id)

    async def acquire(self, user_id: int) -> None:
        """Hold ``user_id`` present until ``release`` (marked before this returns); what
        ``hold`` does, for holders that are records rather than blocks of code."""
        self._held[user_id] = self._held.get(user_id, 0) + 1
        self._start_renewing()
        try:
            await self._write([user_id])
        except (RedisError, OSError) as exc:
            log.warning("could not mark user %d present (%s); the next renewal will", user_id, exc)

    def release(self, user_id: int) -> None:
        """Let go of one hold of ``user_id`` (one per ``acquire``, even a cancelled one)."""
        if user_id not in self._held:
            return
        self._held[user_id] -= 1
        if not self._held[user_id]:
            del self._held[user_id]
        if not self._held and self._renewer is not None:
            self._renewer.cancel()  # nobody left to renew; the next hold starts another
            self._renewer = None

    async def renew(self) -> None:
        """Mark every local holder present for another TTL (each write also prunes expired
        entries, such as those of dead processes)."""
        await self._write(list(self._held))

    async def _write(self, user_ids: list[int]) -> None:
        if not user_ids:
            return
        by_key: dict[str, list[int]] = {}
        for user_id in user_ids:
            by_key.setdefault(self.key_of(user_id), []).append(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:  # one round trip however many
            for key, users in by_key.items():
                for chunk in chunks(users):
                    queue_script(pipe, _MARK_PRESENT, [key], [self._ttl, *chunk])
            await pipe.execute()

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name=f"presence-renewer:{self.name}")

    async def _renew_forever(self) -> None:
        interval = self._ttl / RENEWALS_PER_TTL
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                log.warning(
                    "could not renew %d users' presence (%s); retrying in %.0fs",
                    len(self._held),
                    exc,
                    interval,
                )

    async def stop(self) -> None:
        """Stop renewing: this process's entries expire within the TTL."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None


def chunks(names: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(names), NAMES_PER_COMMAND):
        yield names[start : start + NAMES_PER_COMMAND]
