"""Like, comment and retweet counts: Redis answers at once, MongoDB catches up in batches.

One mechanism serves the three kinds of counter (``CounterKind``).

**Truth.** The collections: a tweet has as many likes as ``likes`` documents, comments as
``comments`` documents and retweets as live retweets (tweets whose ``retweet_of`` is it and
that still hold a ``retweet_key``, which taking a retweet back removes).

**What readers see** is ``Keys.counts(tweet)``, a Redis HASH of absolute values. A write
moves it (when present) in the same script that records the write's delta. A reader who
finds it missing (never counted, expired after ``counter_ttl_seconds``, Redis lost)
recounts from the collections, one aggregation per kind for a whole page, and stores the
result for the next reader.

**MongoDB's stored fields** (``like_count``...) follow through deltas: every write adds
its delta to its tweet shard's ``Keys.count_deltas(shard)`` (``store.keys``: a tweet's
counters and its shard's deltas share a slot, and writes spread over the shards), and the
flush job (``workers.counters``) drains every shard and applies what they held with one
``bulk_write`` of ``$inc``, one update per tweet however many likes it got, so a viral
tweet costs one write per flush instead of one per like.

**Races between a write and a recount.** A write is a MongoDB step then a Redis step; a
recount read between the two would count the new document and the Redis step would add it
again. So a write announces itself first (``begin``: ``Keys.count_writers`` holds how many
writes are in flight and a token that changes with each), and a recount is only stored
when no write was in flight when it started and none began before it was stored. Otherwise
the reader uses its recount for this request only. A write that dies between ``begin`` and
``end`` blocks storing recounts of that tweet for ``counter_guard_seconds``, no longer.

**Flush guarantee.** A shard's drained batch stays in Redis (``Keys.count_batch``, with its
batch ID) until its ``bulk_write`` succeeded; the next flush retries it before draining
anything new from that shard. Each tweet document records the last batch applied to it
(``counts_batch``) and the update only matches a tweet that has not had this batch, so a
batch is applied to every tweet exactly once however often the flush is cut short and run
again. Flushes hold a
lock (``Keys.count_flush_lock``), so batches are applied one after another.

**Repair.** Deltas that never reach the flush (Redis lost, or a process killed between a
write's MongoDB and Redis steps) leave MongoDB's stored count off. A recount that may be
stored (above) and saw no flush under way also compares the truth with the stored field
plus the pending delta and queues the difference as a delta: the next flush repairs the
stored count. Counters expire, so every tweet still being read is recounted, and repaired,
at least every ``counter_ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pymongo import UpdateOne
from redis.exceptions import LockError

from starling.store.documents import Document, TweetDoc
from starling.store.keys import TWEET_SHARDS, tweet_shard
from starling.store.mongo import Collections
from starling.store.mongo_api import MongoCollection
from starling.store.redis import DataPipeline, queue_script, run_script
from starling.store.services import Services
from starling.store.tweets import LIVE

log = logging.getLogger(__name__)


class CounterKind(StrEnum):
    LIKE = "like"
    COMMENT = "comment"
    RETWEET = "retweet"
    QUOTE = "quote"

    @property
    def stored_field(self) -> str:
        """The tweet document's field that MongoDB keeps this count in."""
        return f"{self.value}_count"


KINDS = tuple(CounterKind)
KIND_NAMES = tuple(kind.value for kind in KINDS)

# Field of the batch hash that holds its ID (delta fields are "{tweet id}:{kind}").
_BATCH_ID_FIELD = "#batch"


@dataclass(frozen=True, slots=True)
class Counts:
    like: int = 0
    comment: int = 0
    retweet: int = 0
    quote: int = 0

    @classmethod
    def of(cls, values: dict[CounterKind, int]) -> Counts:
        return cls(**{kind.value: values.get(kind, 0) for kind in KINDS})


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the truth of one kind of counter lives."""

    collection: Callable[[Collections], MongoCollection[Any]]
    tweet_field: str
    live: Document


SOURCES = {
    CounterKind.LIKE: _Source(lambda db: db.likes, "tweet_id", {}),
    CounterKind.COMMENT: _Source(lambda db: db.comments, "tweet_id", {}),
    CounterKind.RETWEET: _Source(lambda db: db.tweets, "retweet_of", {"retweet_key": {"$exists": True}}),
    CounterKind.QUOTE: _Source(lambda db: db.tweets, "quote_of", LIVE),
}


@dataclass(slots=True)
class PendingChange:
    """What one write did to a tweet's counts, filled in between ``begin`` and ``end``."""

    deltas: dict[CounterKind, int] = field(default_factory=dict)

    def add(self, kind: CounterKind, delta: int) -> None:
        self.deltas[kind] = self.deltas.get(kind, 0) + delta


@dataclass(frozen=True, slots=True)
class Batch:
    """Deltas drained for one flush: tweet ID -> kind -> delta, and the batch ID of each
    shard they came from (a batch a cut-short flush left keeps its ID)."""

    ids: dict[int, int]
    deltas: dict[int, dict[CounterKind, int]]

    def id_of(self, tweet_id: int) -> int:
        return self.ids[tweet_shard(tweet_id)]


# KEYS: writers. ARGV: the new token, guard ttl.
_BEGIN = """
redis.call('HINCRBY', KEYS[1], 'busy', 1)
redis.call('HSET', KEYS[1], 'gen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: counts, writers, deltas. ARGV: tweet id, '1' if this write holds a writer guard,
# guard ttl, then (kind, delta) pairs.
_END_CHANGE = """
for i = 4, #ARGV, 2 do
  local kind, delta = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':' .. kind, delta)
  if redis.call('HEXISTS', KEYS[1], kind) == 1 then redis.call('HINCRBY', KEYS[1], kind, delta) end
end
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[2], 'busy', -1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
"""

# KEYS: counts, writers, deltas, flush state. ARGV: tweet id, writers' token seen before
# counting ('' = none), flush token seen ('' = none, '-' = a flush was applying a batch),
# counts ttl, then (kind, counted, stored) triples (stored '' = unknown). Stores the recount
# only if no write began since it was read (module doc, "Races"); queues the repair of
# MongoDB's stored count only if no flush ran meanwhile either.
_STORE_RECOUNT = """
if tonumber(redis.call('HGET', KEYS[2], 'busy') or '0') ~= 0 then return 0 end
if (redis.call('HGET', KEYS[2], 'gen') or '') ~= ARGV[2] then return 0 end
local repair = ARGV[3] ~= '-' and tonumber(redis.call('HGET', KEYS[4], 'busy') or '0') == 0
  and (redis.call('HGET', KEYS[4], 'gen') or '') == ARGV[3]
for i = 5, #ARGV, 3 do
  local kind, counted, stored = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', KEYS[1], kind, counted) == 1 and repair and stored ~= '' then
    local delta_field = ARGV[1] .. ':' .. kind
    local pending = tonumber(redis.call('HGET', KEYS[3], delta_field) or '0')
    local drift = tonumber(counted) - tonumber(stored) - pending
    if drift ~= 0 then redis.call('HINCRBY', KEYS[3], delta_field, drift) end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS: deltas, batch, flush state. ARGV: the ID a new batch gets. A batch left by a flush
# that did not finish is returned again, with its original ID.
_DRAIN = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], '#batch', ARGV[1])
end
redis.call('HSET', KEYS[3], 'busy', 1)
return redis.call('HGETALL', KEYS[2])
"""

# KEYS: batch, flush state. ARGV: the batch ID just applied.
_FINISH = """
if redis.call('HGET', KEYS[1], '#batch') == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[2], 'busy', 0, 'gen', ARGV[1])
return 1
"""


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class Counters:
    """The counts of tweets: writes, batched reads, recounts and the flush."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._redis = services.redis
        self._keys = services.keys
        self._settings = services.settings

    # -- writes --------------------------------------------------------------------------

    async def begin(self, tweet_id: int) -> bool:
        """Announce a write to the tweet's counts; call before its MongoDB step."""
        key = self._keys.count_writers(tweet_id)
        token, ttl = self._services.ids.next_id(), self._settings.counter_guard_seconds
        await run_script(self._redis, _BEGIN, [key], [token, ttl])
        return True

    async def end(self, tweet_id: int, change: PendingChange, *, guarded: bool) -> None:
        """Apply the write's deltas (to the counts readers see, and to the deltas MongoDB
        is owed) and withdraw its announcement when ``begin`` succeeded."""
        deltas = [item for kind, delta in change.deltas.items() if delta for item in (kind.value, delta)]
        if not deltas and not guarded:
            return
        keys = self._keys
        script_keys = [
            keys.counts(tweet_id),
            keys.count_writers(tweet_id),
            keys.count_deltas(tweet_shard(tweet_id)),
        ]
        args = [tweet_id, "1" if guarded else "0", self._settings.counter_guard_seconds, *deltas]
        await run_script(self._redis, _END_CHANGE, script_keys, args)

    # -- reads ---------------------------------------------------------------------------

    async def read(self, tweet_ids: Sequence[int]) -> list[Counts]:
        """The counts of each tweet: one Redis round trip, plus a recount from MongoDB (one
        query per kind, and the stored fields) for the tweets whose counters are gone."""
        async with self._redis.pipeline(transaction=False) as pipe:
            queued = self.queue_read(pipe, tweet_ids)
            replies = await pipe.execute()
        return await self.finish_read(tweet_ids, replies[:queued])

    def queue_read(self, pipe: DataPipeline, tweet_ids: Sequence[int]) -> int:
        """Queue, on ``pipe``, the reads ``finish_read`` turns into counts (so a caller can
        send them with its own reads); returns how many replies they take."""
        keys = self._keys
        shards = sorted({tweet_shard(tweet_id) for tweet_id in tweet_ids})
        for shard in shards:
            pipe.hmget(keys.count_flush_state(shard), ["busy", "gen"])
        for tweet_id in tweet_ids:
            pipe.hmget(keys.counts(tweet_id), list(KIND_NAMES))
            pipe.hmget(keys.count_writers(tweet_id), ["busy", "gen"])
        return len(shards) + 2 * len(tweet_ids)

    async def finish_read(self, tweet_ids: Sequence[int], replies: Sequence[Any]) -> list[Counts]:
        """The counts from the replies of ``queue_read``, recounting what Redis lacks."""
        shards = sorted({tweet_shard(tweet_id) for tweet_id in tweet_ids})
        flush_seen = {
            shard: "-" if _text(busy) not in ("", "0") else _text(gen)
            for shard, (busy, gen) in zip(shards, replies, strict=False)
        }
        tweet_replies = replies[len(shards) :]
        found: dict[int, Counts] = {}
        writers_seen: dict[int, str | None] = {}
        for tweet_id, values, (busy, gen) in zip(
            tweet_ids, tweet_replies[::2], tweet_replies[1::2], strict=True
        ):
            if None not in values:
                found[tweet_id] = Counts(*(int(value) for value in values))
            else:
                # None: a write is in flight, so this recount must not be stored.
                writers_seen[tweet_id] = _text(gen) if _text(busy) in ("", "0") else None
        if writers_seen:
            missing = list(writers_seen)
            counted, stored = await asyncio.gather(self.count(missing), self._stored(missing))
            found.update(counted)
            storable = {tid: seen for tid, seen in writers_seen.items() if seen is not None}
            if storable:
                await self._store(storable, counted, stored, flush_seen)
        return [found[tweet_id] for tweet_id in tweet_ids]

    async def count(self, tweet_ids: Sequence[int]) -> dict[int, Counts]:
        """Recount from the collections, the truth: one aggregation per kind."""
        per_kind = await asyncio.gather(*(self._count_kind(kind, tweet_ids) for kind in KINDS))
        by_kind = dict(zip(KINDS, per_kind, strict=True))
        return {
            tweet_id: Counts.of({kind: numbers.get(tweet_id, 0) for kind, numbers in by_kind.items()})
            for tweet_id in tweet_ids
        }

    async def _count_kind(self, kind: CounterKind, tweet_ids: Sequence[int]) -> dict[int, int]:
        source = SOURCES[kind]
        cursor = await source.collection(self._services.db).aggregate(
            [
                {"$match": {source.tweet_field: {"$in": list(tweet_ids)}, **source.live}},
                {"$group": {"_id": f"${source.tweet_field}", "n": {"$sum": 1}}},
            ]
        )
        return {row["_id"]: row["n"] for row in await cursor.to_list()}

    async def _stored(self, tweet_ids: Sequence[int]) -> dict[int, TweetDoc]:
        """MongoDB's stored counts of the tweets that exist."""
        docs = await self._services.db.tweets.find(
            {"_id": {"$in": list(tweet_ids)}}, {kind.stored_field: 1 for kind in KINDS}
        ).to_list()
        return {doc["_id"]: doc for doc in docs}

    async def _store(
        self,
        writers_seen: dict[int, str],
        counted: dict[int, Counts],
        stored: dict[int, TweetDoc],
        flush_seen: dict[int, str],
    ) -> None:
        keys = self._keys
        ttl = self._settings.counter_ttl_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            for tweet_id, seen in writers_seen.items():
                doc = stored.get(tweet_id)
                triples: list[Any] = []
                for kind in KINDS:
                    stored_value = "" if doc is None else doc.get(kind.stored_field, 0)
                    triples += [kind.value, getattr(counted[tweet_id], kind.value), stored_value]
                shard = tweet_shard(tweet_id)
                queue_script(
                    pipe,
                    _STORE_RECOUNT,
                    [
                        keys.counts(tweet_id),
                        keys.count_writers(tweet_id),
                        keys.count_deltas(shard),
                        keys.count_flush_state(shard),
                    ],
                    [tweet_id, seen, flush_seen[shard], ttl, *triples],
                )
            await pipe.execute()

    # -- the flush -----------------------------------------------------------------------

    async def flush(self) -> int | None:
        """Apply the pending deltas to MongoDB: one ``bulk_write``. Returns how many tweets
        were updated, or None when another flush holds the lock."""
        lock = self._services.queue_redis.lock(
            self._keys.count_flush_lock(), timeout=self._settings.counter_flush_lock_seconds
        )
        if not await lock.acquire(blocking=False):
            return None
        try:
            batch = await self.drain()
            if batch is None:
                return 0
            updated = await self.apply(batch)
            await self.finish(batch)
            return updated
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("counter flush outlived its lock (counter_flush_lock_seconds)")

    async def drain(self) -> Batch | None:
        """Take every shard's pending deltas out of the way of new writes (or, first, the
        batch a failed flush left behind there): one script per shard, in one pipeline;
        None when nothing is pending."""
        keys = self._keys
        new_id = self._services.ids.next_id()
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(TWEET_SHARDS):
                shard_keys = [
                    keys.count_deltas(shard),
                    keys.count_batch(shard),
                    keys.count_flush_state(shard),
                ]
                queue_script(pipe, _DRAIN, shard_keys, [new_id])
            replies = await pipe.execute()
        ids: dict[int, int] = {}
        deltas: dict[int, dict[CounterKind, int]] = {}
        for shard, raw in enumerate(replies):
            if not raw:
                continue
            fields = dict(zip(map(_text, raw[::2]), map(_text, raw[1::2]), strict=True))
            ids[shard] = int(fields.pop(_BATCH_ID_FIELD))
            for name, value in fields.items():
                tweet_id, kind = name.split(":")
                deltas.setdefault(int(tweet_id), {})[CounterKind(kind)] = int(value)
        return Batch(ids=ids, deltas=deltas) if ids else None

    async def apply(self, batch: Batch) -> int:
        """One ``bulk_write``: per tweet, ``$inc`` of its deltas unless it had this batch."""
        updates = [
            UpdateOne(
                {"_id": tweet_id, "counts_batch": {"$ne": batch.id_of(tweet_id)}},
                {
                    "$inc": {kind.stored_field: delta for kind, delta in kinds.items() if delta},
                    "$set": {"counts_batch": batch.id_of(tweet_id)},
                },
            )
            for tweet_id, kinds in batch.deltas.items()
            if any(kinds.values())
        ]
        if not updates:
            return 0
        result = await self._services.db.tweets.bulk_write(updates, ordered=False)
        return result.modified_count

    async def finish(self, batch: Batch) -> None:
        """Forget a batch that MongoDB has (one script per shard it came from)."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard, batch_id in batch.ids.items():
                queue_script(
                    pipe, _FINISH, [keys.count_batch(shard), keys.count_flush_state(shard)], [batch_id]
                )
            await pipe.execute()
