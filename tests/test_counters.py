"""The counter machinery (``store.counters``) at the points where it can go wrong: a flush
cut short at each step, a recount racing a write, drift in MongoDB's stored counts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from starling.resolvers.counting import counted_change
from starling.store.counters import CounterKind, Counters, Counts
from starling.store.keys import tweet_shard
from starling.store.services import Services
from tests.conftest import make_settings

pytestmark = pytest.mark.both_redis_topologies

TWEETS = (101, 102, 103)


@pytest.fixture
async def services(redis_url: str) -> AsyncIterator[Services]:
    opened = await Services.open(make_settings(redis_url))
    for tweet_id in TWEETS:
        await opened.db.tweets.insert_one({"_id": tweet_id, "author_id": 1, "text": "t", "like_count": 0})
    try:
        yield opened
    finally:
        await opened.close()


async def like(services: Services, user_id: int, tweet_id: int) -> None:
    """A like as ``resolvers.likes.add_like`` stores it."""
    async with counted_change(services, tweet_id) as change:
        await services.db.likes.insert_one({"user_id": user_id, "tweet_id": tweet_id})
        change.add(CounterKind.LIKE, 1)


async def stored_likes(services: Services) -> dict[int, int]:
    docs = await services.db.tweets.find({}, {"like_count": 1}).to_list()
    return {doc["_id"]: doc.get("like_count", 0) for doc in docs}


async def test_a_flush_cut_short_after_draining_loses_nothing(services: Services) -> None:
    counters = Counters(services)
    await counters.read(TWEETS)  # counted: later likes move the Redis counts directly
    for user in range(3):
        await like(services, user, 101)
    await like(services, 9, 102)
    abandoned = await counters.drain()  # the flush dies here
    assert abandoned is not None
    await like(services, 10, 102)  # arrives while the batch is pending

    assert await counters.flush() == 2  # retries the abandoned batch first...
    assert await stored_likes(services) == {101: 3, 102: 1, 103: 0}
    assert await counters.flush() == 1  # ...and takes the newer deltas next
    assert await stored_likes(services) == {101: 3, 102: 2, 103: 0}
    assert await counters.flush() == 0  # nothing left
    assert await counters.read(TWEETS) == [Counts(like=3), Counts(like=2), Counts()]


async def test_a_flush_cut_short_after_writing_applies_its_batch_once(services: Services) -> None:
    counters = Counters(services)
    for user in range(4):
        await like(services, user, 101)
    batch = await counters.drain()
    assert batch is not None
    await counters.apply(batch)  # MongoDB has it; the flush dies before forgetting it
    await like(services, 7, 103)  # another counter shard (store.keys.tweet_shard)
    assert tweet_shard(101) != tweet_shard(103)

    # The retried batch matches no tweet again; the other shard's new delta is applied.
    assert await counters.flush() == 1
    assert await stored_likes(services) == {101: 4, 102: 0, 103: 1}
    assert await counters.flush() == 0


async def test_a_recount_during_a_write_is_not_cached(services: Services) -> None:
    """The write's MongoDB step is done, its Redis step not yet: a recount sees the like,
    and caching it would count the like twice once the Redis step lands."""
    counters = Counters(services)
    async with counted_change(services, 101) as change:
        await services.db.likes.insert_one({"user_id": 1, "tweet_id": 101})
        change.add(CounterKind.LIKE, 1)
        assert await counters.read([101]) == [Counts(like=1)]
        assert await services.redis.exists(services.keys.counts(101)) == 0
    assert await counters.read([101]) == [Counts(like=1)]
    assert await services.redis.hget(services.keys.counts(101), "like") == b"1"
    await like(services, 2, 101)
    assert await counters.read([101]) == [Counts(like=2)]


async def test_a_recount_repairs_drift_in_mongodb(services: Services) -> None:
    counters = Counters(services)
    await like(services, 1, 102)
    await like(services, 2, 102)
    # Drift: a stored count that no delta explains (deltas lost with Redis, say).
    await services.db.tweets.update_one({"_id": 102}, {"$set": {"like_count": 7}})
    await services.redis.delete(services.keys.counts(102))
    assert await counters.read([102]) == [Counts(like=2)]
    await counters.flush()
    assert (await stored_likes(services))[102] == 2
    # Recounting again finds nothing to repair.
    await services.redis.delete(services.keys.counts(102))
    assert await counters.read([102]) == [Counts(like=2)]
    assert await counters.flush() == 0


async def test_no_repair_is_queued_while_a_flush_is_applying(services: Services) -> None:
    """Mid-flush MongoDB's stored count and the pending deltas disagree by the batch:
    a repair computed then would double it."""
    counters = Counters(services)
    for user in range(2):
        await like(services, user, 103)
    batch = await counters.drain()
    assert batch is not None
    assert await counters.read([103]) == [Counts(like=2)]  # recounted mid-flush
    await counters.apply(batch)
    await counters.finish(batch)
    assert await counters.flush() == 0
    assert (await stored_likes(services))[103] == 2


async def test_one_mechanism_serves_every_kind(services: Services) -> None:
    counters = Counters(services)
    await counters.read([101])
    async with counted_change(services, 101) as change:
        await services.db.comments.insert_one({"tweet_id": 101, "author_id": 2, "text": "hi"})
        change.add(CounterKind.COMMENT, 1)
    async with counted_change(services, 101) as change:
        await services.db.tweets.insert_one(
            {"_id": 201, "author_id": 3, "retweet_of": 101, "retweet_key": "3:101"}
        )
        change.add(CounterKind.RETWEET, 1)
    assert await counters.read([101]) == [Counts(comment=1, retweet=1)]
    assert await counters.count([101]) == {101: Counts(comment=1, retweet=1)}
    await counters.flush()
    doc = await services.db.tweets.find_one({"_id": 101})
    assert (doc["comment_count"], doc["retweet_count"]) == (1, 1)
