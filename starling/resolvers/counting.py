"""The one way a write changes a tweet's like, comment or retweet count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starling.store.counters import Counters, PendingChange
from starling.store.degrade import best_effort
from starling.store.services import Services


@asynccontextmanager
async def counted_change(services: Services, tweet_id: int | None) -> AsyncIterator[PendingChange]:
    """Wrap the MongoDB write of a like, comment or retweet of ``tweet_id``; the block
    records in the yielded change what the write did (``change.add(kind, delta)``), only
    once it succeeded. ``tweet_id`` None: no count is involved, nothing happens.

    The counts move in Redis after the block (``store.counters``). Redis down: the write
    stands and the counts miss it, in Redis and in MongoDB's stored field, until the tweet
    is next recounted from the collections (``counter_ttl_seconds`` at most), which
    repairs both."""
    change = PendingChange()
    if tweet_id is None:
        yield change
        return
    counters = Counters(services)
    guarded = await best_effort(f"count guard of tweet {tweet_id}", counters.begin(tweet_id)) is True
    try:
        yield change
    finally:
        await best_effort(f"count of tweet {tweet_id}", counters.end(tweet_id, change, guarded=guarded))
