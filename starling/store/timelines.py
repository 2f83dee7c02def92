"""Home timelines and authors' recent tweets in Redis.

Both are sorted sets of 8-byte tweet IDs with score 0, newest first (see ``store.keys``),
whose last member is ``TIMELINE_SENTINEL``, which marks the list as built. A list without the
sentinel (a missing key, or one a rebuild is still filling) therefore means "never built,
expired or lost: rebuild it from MongoDB", never "empty".

Writers only touch lists that are built or being rebuilt (``Keys.rebuild_lock`` held):
writing into a lost list would be wasted work and could hide the loss, while a list under
rebuild must receive what is posted during the rebuild's MongoDB query, or the rebuilt
list would miss it. The rebuild then merges its result into what arrived meanwhile.

On a Redis Cluster a script may only name keys of one slot: a fan-out batch then runs the
add script once per slot its followers' timelines fall in (``store.keys``: timelines of a
user shard share a slot, and fan-out reads followers in shard order, so those groups are
large). On one server it runs once for the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby

from redis.crc import key_slot

from starling.store.ids import from_member, to_member
from starling.store.keys import TIMELINE_SENTINEL, Keys
from starling.store.redis import DataPipeline, DataRedis, queue_script, run_script

# KEYS: pairs of (list, its rebuild lock); ARGV[1] length cap; ARGV[2..] members. Adds to
# each list that is built or being rebuilt, then trims its oldest entries (ranks from the
# cap on) while keeping the sentinel (rank -1). Returns how many lists it wrote. One call
# serves a whole fan-out batch: a command per follower costs the client more than the work
# costs Redis (bench/fanout.py).
_ADD_IF_BUILT = """
local cap = tonumber(ARGV[1])
local written = 0
for k = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[k]) == 1 or redis.call('EXISTS', KEYS[k + 1]) == 1 then
    for i = 2, #ARGV do redis.call('ZADD', KEYS[k], 0, ARGV[i]) end
    redis.call('ZREMRANGEBYRANK', KEYS[k], cap, -2)
    written = written + 1
  end
end
return written
"""

# KEYS[1] a list; ARGV[1] length cap; ARGV[2] TTL; ARGV[3..] members (the sentinel first).
# A rebuilt list, merged into what fan-out wrote while the rebuild held its lock.
_STORE = """
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], tonumber(ARGV[1]), -2)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class Timelines:
    """Redis operations on home timelines and author lists; no knowledge of MongoDB."""

    def __init__(
        self, redis: DataRedis, *, cluster: bool, timeline_max: int, author_max: int, ttl_seconds: int
    ):
        self._redis = redis
        self._cluster = cluster
        self._timeline_max = timeline_max
        self._author_max = author_max
        self._ttl = ttl_seconds

    # -- writes ------------------------------------------------------------------------

    def add_to_timelines(
        self, pipe: DataPipeline, timeline_keys: Iterable[str], tweet_ids: Sequence[int]
    ) -> int:
        """Queue, on ``pipe``, adding ``tweet_ids`` to each built timeline (idempotent): one
        script call for all of them (one per slot on a cluster), each replying how many it
        wrote. Returns how many replies were queued."""
        return self._add(pipe, timeline_keys, tweet_ids, self._timeline_max)

    def add_author_tweet(self, pipe: DataPipeline, author_key: str, tweet_id: int) -> int:
        """Queue adding a new tweet to its author's list, if that list is built."""
        return self._add(pipe, [author_key], [tweet_id], self._author_max)

    def _add(self, pipe: DataPipeline, keys: Iterable[str], tweet_ids: Sequence[int], cap: int) -> int:
        if not tweet_ids:
            return 0
        members = [to_member(tweet_id) for tweet_id in tweet_ids]
        groups = _by_slot(keys) if self._cluster else [list(keys)]
        queued = 0
        for group in groups:
            if group:
                script_keys = [name for key in group for name in (key, Keys.rebuild_lock(key))]
                queue_script(pipe, _ADD_IF_BUILT, script_keys, [cap, *members])
                queued += 1
        return queued

    def remove_from_timelines(
        self, pipe: DataPipeline, timeline_keys: Iterable[str], tweet_ids: Sequence[int]
    ) -> None:
        members = [to_member(tweet_id) for tweet_id in tweet_ids]
        for key in timeline_keys:
            pipe.zrem(key, *members)

    async def store_timeline(self, key: str, tweet_ids: Sequence[int]) -> None:
        """Mark a timeline built with a freshly rebuilt content (newest ``timeline_max``)."""
        await self._store(key, tweet_ids, self._timeline_max)

    async def store_author_tweets(self, key: str, tweet_ids: Sequence[int]) -> None:
        """Mark an author list built with its rebuilt content (newest ``author_tweets_max``)."""
        await self._store(key, tweet_ids, self._author_max)

    async def _store(self, key: str, tweet_ids: Sequence[int], cap: int) -> None:
        members = [TIMELINE_SENTINEL, *(to_member(tweet_id) for tweet_id in tweet_ids)]
        await run_script(self._redis, _STORE, [key], [cap, self._ttl, *members])

    # -- reads -------------------------------------------------------------------------

    def queue_page(self, pipe: DataPipeline, key: str, before: int | None, count: int) -> None:
        """Queue reading up to ``count`` IDs older than ``before``, newest first."""
        lower = b"(" + to_member(before) if before is not None else "-"
        pipe.zrangebylex(key, lower, "+", start=0, num=count)

    def queue_is_built(self, pipe: DataPipeline, key: str) -> None:
        """Queue the sentinel's score: None when the list must be rebuilt (see ``is_built``)."""
        pipe.zscore(key, TIMELINE_SENTINEL)

    def queue_touch(self, pipe: DataPipeline, key: str) -> None:
        """Keep an active reader's timeline alive for another TTL."""
        pipe.expire(key, self._ttl)


def is_built(sentinel_score: float | None) -> bool:
    """Whether the reply of ``queue_is_built`` says the list is built."""
    return sentinel_score is not None


def decode_members(raw: Sequence[bytes | str]) -> tuple[list[int], bool]:
    """IDs from a ``ZRANGEBYLEX`` reply, and whether it reached the sentinel (the end)."""
    ids: list[int] = []
    reached_end = False
    for member in raw:
        binary = member.encode("latin-1") if isinstance(member, str) else member
        if binary == TIMELINE_SENTINEL:
            reached_end = True
        else:
            ids.append(from_member(binary))
    return ids, reached_end


def _by_slot(keys: Iterable[str]) -> list[list[str]]:
    """``keys`` grouped by hash slot (one script per group on a cluster)."""
    slotted = sorted((key_slot(key.encode()), key) for key in keys)
    return [[key for _, key in group] for _, group in groupby(slotted, key=lambda pair: pair[0])]
