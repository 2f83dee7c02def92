"""The fan-out job on a real arq worker and real Redis: killed half-way and retried, split
into continuation jobs, and repeated, it delivers every tweet to every follower once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import orjson
import pytest
from arq.worker import FailedJobs
from redis.asyncio import Redis

from starling.store.ids import to_member
from starling.store.jobs import FANOUT_TWEET
from starling.store.keys import user_shard
from starling.store.monitoring import count_round_trips
from starling.store.pubsub.presence import Presence
from starling.store.services import Services
from starling.workers import fanout
from tests.api import Account, eventually
from tests.harness import Harness, started

pytestmark = pytest.mark.both_redis_topologies


class WorkerKilled(RuntimeError):
    """Stands for the worker process dying between two batches."""


async def audience(h: Harness, author: Account, size: int) -> list[Account]:
    """``size`` followers of ``author`` with built timelines, in follow order, and the
    queue drained of what following queued (notifications)."""
    followers = [await h.api.sign_up(f"{author.handle}_f{n}") for n in range(size)]
    for follower in followers:
        await h.api.follow(follower, author)
        await h.api.feed_page(follower)
    await h.run_worker()
    return followers


async def holders(h: Harness, followers: list[Account], tweet_id: str) -> list[bool]:
    return [tweet_id in (await h.timeline(follower) or set()) for follower in followers]


async def repaired_by_cron(h: Harness) -> None:
    """Run the worker with its crons until the outbox is empty (the repair only takes tweets
    older than OUTBOX_REPAIR_AFTER_SECONDS, 1 s in tests)."""

    async def repaired() -> bool:
        await h.run_worker(crons=True)
        return await h.fanned_out()

    await eventually(repaired, within=5, interval=0.2)


def two_per_batch(redis_url: str, batches_per_job: int) -> AbstractAsyncContextManager[Harness]:
    """The app with a worker that runs only when the test says (``h.run_worker``), fanning
    out to two followers per batch."""
    return started(
        redis_url, run_worker_in_process=False, fanout_batch_size=2, fanout_batches_per_job=batches_per_job
    )


def after_each_batch(monkeypatch: pytest.MonkeyPatch, then: Callable[[Sequence[int]], None]) -> None:
    """Call ``then(tweet_ids)`` after each batch the fan-out delivers; it may raise, as a
    worker dying between two batches would."""
    real_deliver = fanout.deliver_batch

    async def delivered(
        services: Services, followers: Sequence[int], tweet_ids: Sequence[int], **options: bool
    ) -> None:
        await real_deliver(services, followers, tweet_ids, **options)
        then(tweet_ids)

    monkeypatch.setattr(fanout, "deliver_batch", delivered)


async def test_a_fanout_killed_after_its_first_batch_is_retried_and_delivers_exactly_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_per_batch(redis_url, batches_per_job=10) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 5)
        delivered_batches = 0

        def dies_after_first_batch(tweet_ids: Sequence[int]) -> None:
            nonlocal delivered_batches
            delivered_batches += 1
            if delivered_batches == 1:
                raise WorkerKilled("killed after the first batch")

        after_each_batch(monkeypatch, dies_after_first_batch)
        tweet = (await h.api.post(author, "survives a dying worker"))["id"]
        with pytest.raises(FailedJobs):
            await h.run_worker()
        # Followers are walked in shard order (store.follows): the first two of it have it.
        walk = sorted(range(5), key=lambda n: (user_shard(int(followers[n].id)), n))
        assert await holders(h, followers, tweet) == [n in walk[:2] for n in range(5)]
        assert await h.pending_fanouts() == 1  # the outbox still holds it

        # The outbox repair (an arq cron) runs the job again from the start once the tweet is
        # older than OUTBOX_REPAIR_AFTER_SECONDS; the first batch is delivered again.
        await repaired_by_cron(h)
        assert delivered_batches == 1 + 3
        key_of = h.services.keys.home_timeline
        for follower in followers:
            members = await h.services.redis.zrange(key_of(int(follower.id)), 0, -1)
            assert members.count(to_member(int(tweet))) == 1
            assert (await h.api.whole_feed(follower)).count(tweet) == 1
            assert await h.api.whole_feed(follower) == [tweet]


async def test_a_large_fanout_is_split_so_other_authors_are_not_stuck_behind_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_per_batch(redis_url, batches_per_job=1) as h:
        big, small = await h.api.sign_up("big"), await h.api.sign_up("small")
        big_followers = await audience(h, big, 5)
        small_followers = await audience(h, small, 1)
        batches: list[str] = []
        after_each_batch(
            monkeypatch, lambda tweet_ids: batches.append("big" if tweet_ids == [int(big_tweet)] else "small")
        )
        big_tweet = (await h.api.post(big, "to five, two at a time"))["id"]
        small_tweet = (await h.api.post(small, "to one"))["id"]
        worker = await h.run_worker(max_jobs=1)  # one job at a time: the queue's order shows
        assert batches == ["big", "small", "big", "big"]
        assert worker.jobs_complete == 4  # three jobs for the big audience, one for the small
        assert await holders(h, big_followers, big_tweet) == [True] * 5
        assert await holders(h, small_followers, small_tweet) == [True]
        assert await h.fanned_out()


async def test_a_repeated_fanout_adds_nothing_twice(redis_url: str) -> None:
    async with started(redis_url, run_worker_in_process=False, fanout_batch_size=2) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 3)
        tweet = (await h.api.post(author, "delivered twice, seen once"))["id"]
        await h.run_worker()
        sizes = [await h.services.redis.zcard(h.services.keys.home_timeline(int(f.id))) for f in followers]
        for _ in range(2):
            assert await FANOUT_TWEET.enqueue(h.services.queue, int(tweet), 0)
            await h.run_worker()
        assert sizes == [
            await h.services.redis.zcard(h.services.keys.home_timeline(int(f.id))) for f in followers
        ]
        for follower in followers:
            assert await h.api.whole_feed(follower) == [tweet]


async def test_a_fanout_batch_costs_one_round_trip_per_redis_role(redis_url: str) -> None:
    """Timelines written in one data-Redis pipeline and online followers told in one
    queue-Redis pipeline, sent at once, with no script-cache check before either
    (``store.redis.queue_script``)."""
    async with started(redis_url, run_worker_in_process=False) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 3)
        tweet = (await h.api.post(author, "one round trip per batch"))["id"]
        follower_ids = [int(follower.id) for follower in followers]
        with count_round_trips() as trips:
            await fanout.deliver_batch(h.services, follower_ids, [int(tweet)], announce=True)
        # A cluster's data pipeline is one round trip per node it touches, sent in parallel.
        data_nodes = len(h.services.redis.get_primaries()) if h.services.cluster else 1
        assert trips.mongo == 0 and 2 <= trips.redis <= data_nodes + 1
        assert await holders(h, followers, tweet) == [True, True, True]


async def heard_while(redis: Redis, channels: list[str], action: Callable[[], Awaitable[object]]) -> list:
    """(channel, event) published on ``channels`` while ``action`` runs, as a plain redis-py
    subscriber hears them. The subscriptions are confirmed before the action, and a marker
    published after it ends the listening: one connection's messages arrive in order."""
    marker = f"{channels[0]}:marker"
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(*channels, marker)
        for _ in range(len(channels) + 1):
            confirmation = await pubsub.get_message(timeout=2)
            assert confirmation is not None and confirmation["type"] == "subscribe"
        await action()
        await redis.publish(marker, b"")
        heard = []
        while (message := await pubsub.get_message(timeout=2)) is not None:
            if message["channel"].decode() == marker:
                return heard
            heard.append((message["channel"].decode(), orjson.loads(message["data"])))
    raise AssertionError("the marker published after the action never arrived")


async def test_a_fanout_publishes_only_to_followers_online_now(redis_url: str) -> None:
    """Three followers with built timelines: one holds a homeFeed subscription, one's
    presence has expired (its API process died), one never subscribed. All three timelines
    get the tweet; only the first follower's channel hears of it."""
    async with started(redis_url, run_worker_in_process=False) as h:
        author = await h.api.sign_up("author")
        followers = await audience(h, author, 3)
        online, expired, offline = (int(follower.id) for follower in followers)
        keys, redis = h.services.keys, h.services.queue_redis
        presence = Presence(redis, "feed", keys.feed_presence_of, h.settings.presence_ttl_seconds)
        channels = [keys.feed_events(user) for user in (online, expired, offline)]
        tweet = ""

        async def post_and_fan_out() -> None:
            nonlocal tweet
            tweet = (await h.api.post(author, "for those listening"))["id"]
            await h.run_worker()

        async with presence.hold(online):
            seconds, micros = await redis.time()
            await redis.zadd(keys.feed_presence_of(expired), {str(expired): seconds + micros / 1e6 - 1})
            heard = await heard_while(redis, channels, post_and_fan_out)
            # Expired, not pruned:
            assert await redis.zscore(keys.feed_presence_of(expired), str(expired)) is not None
        assert heard == [(keys.feed_events(online), {"tweet_id": int(tweet)})]
        assert await holders(h, followers, tweet) == [True, True, True]
