"""Home timelines and authors' recent tweets in Redis.

A timeline is a sorted set of fixed-width tweet IDs with score 0 (see ``store.keys``);
its lowest member is ``TIMELINE_SENTINEL``, which marks it as built. A key that is
missing therefore means "never built, expired or lost" (rebuild it from MongoDB), never
"empty". Fan-out only touches timelines that exist: a reader whose timeline is gone gets
a complete one rebuilt on the next read, so writing into a half-built one would be wasted
work and could hide the loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from starling.store.ids import to_member
from starling.store.keys import TIMELINE_SENTINEL

# KEYS[1] timeline; ARGV[1] timeline max; ARGV[2..] members. Adds only to a built timeline,
# then trims the oldest entries while keeping the sentinel (rank 0).
_ADD_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[1]) + 1))
return 1
"""


class Timelines:
    """Redis operations on home timelines and author lists; no knowledge of MongoDB."""

    def __init__(self, redis: Redis, timeline_max: int, author_max: int, ttl_seconds: int):
        self._redis = redis
        self._timeline_max = timeline_max
        self._author_max = author_max
        self._ttl = ttl_seconds
        self._add_if_built = redis.register_script(_ADD_IF_BUILT)

    # -- writes ------------------------------------------------------------------------

    def add_to_timelines(
        self, pipe: Pipeline, timeline_keys: Iterable[str], tweet_ids: Sequence[int]
    ) -> None:
        """Queue, on ``pipe``, adding ``tweet_ids`` to each built timeline (idempotent)."""
        members = [to_member(tweet_id) for tweet_id in tweet_ids]
        # Registering the script on the pipeline makes redis-py load it if the server lost
        # it (one SCRIPT EXISTS per pipeline, not per key).
        pipe.scripts.add(self._add_if_built)
        for key in timeline_keys:
            pipe.evalsha(self._add_if_built.sha, 1, key, self._timeline_max, *members)

    def remove_from_timelines(
        self, pipe: Pipeline, timeline_keys: Iterable[str], tweet_ids: Sequence[int]
    ) -> None:
        members = [to_member(tweet_id) for tweet_id in tweet_ids]
        for key in timeline_keys:
            pipe.zrem(key, *members)

    def add_author_tweet(self, pipe: Pipeline, author_key: str, tweet_id: int) -> None:
        pipe.zadd(author_key, {to_member(tweet_id): 0})
        pipe.zremrangebyrank(author_key, 0, -(self._author_max + 1))

    async def store_timeline(self, key: str, tweet_ids: Sequence[int]) -> None:
        """Replace a timeline with a freshly built one (newest ``timeline_max`` kept)."""
        newest = sorted(tweet_ids, reverse=True)[: self._timeline_max]
        mapping = {TIMELINE_SENTINEL: 0} | {to_member(tweet_id): 0 for tweet_id in newest}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zadd(key, mapping)
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def store_author_tweets(self, key: str, tweet_ids: Sequence[int]) -> None:
        newest = sorted(tweet_ids, reverse=True)[: self._author_max]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if newest:
                pipe.zadd(key, {to_member(tweet_id): 0 for tweet_id in newest})
            await pipe.execute()

    # -- reads -------------------------------------------------------------------------

    def queue_page(self, pipe: Pipeline, key: str, before: int | None, count: int) -> None:
        """Queue reading up to ``count`` IDs older than ``before``, newest first."""
        upper = f"({to_member(before)}" if before is not None else "+"
        pipe.zrevrangebylex(key, upper, "-", start=0, num=count)

    def queue_touch(self, pipe: Pipeline, key: str) -> None:
        """Keep an active reader's timeline alive for another TTL."""
        pipe.expire(key, self._ttl)


def decode_members(raw: Sequence[bytes | str]) -> tuple[list[int], bool]:
    """IDs from a ``ZREVRANGEBYLEX`` reply, and whether it reached the sentinel (the end)."""
    ids: list[int] = []
    reached_end = False
    for member in raw:
        text = member.decode() if isinstance(member, bytes) else member
        if text == TIMELINE_SENTINEL:
            reached_end = True
        else:
            ids.append(int(text))
    return ids, reached_end
