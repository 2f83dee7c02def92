"""Fan-out jobs: deliver a tweet to its author's followers' timelines, or take it back.

Followers are read in shard order (``store.follows``), one batch per Redis pipeline. A job
handles at most ``fanout_batches_per_job`` batches and then enqueues its own continuation,
so a huge audience is spread over many short jobs and other authors' tweets are not stuck
behind it. Every step is idempotent (adding an ID
already in a sorted set, or removing one that is gone, changes nothing), so a job that
dies half-way is simply run again: by arq, or by the outbox repair (``workers.repair``),
which re-enqueues any tweet whose ``fanout_pending`` marker the last job did not clear.

Celebrities (``store.celebrities``) are not fanned out: their tweet goes to their own
timeline and author list, which readers merge. When an author drops back below the
threshold, ``backfill_author`` copies their recent tweets into their followers' timelines
before readers stop merging them.

A retraction tells the same audience: the author's own feed channel and every follower
holding a live home feed subscription hear that the tweet left their feed
(``homeFeedEvents``' ``TweetDeleted``), batch by batch as their timelines lose it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starling.store import celebrities
from starling.store.follows import START, FollowerPosition, follower_batch
from starling.store.ids import id_timestamp_ms
from starling.store.jobs import BACKFILL_AUTHOR, FANOUT_TWEET, RETRACT_TWEET, JobContext
from starling.store.metrics import FANOUT_DELIVERIES, FANOUT_JOBS, FANOUT_LAG
from starling.store.pubsub.publishing import queue_live_feed_events, tweet_event
from starling.store.services import Services
from starling.store.tweets import recent_tweet_ids

log = logging.getLogger(__name__)


async def deliver_batch(
    services: Services,
    followers: Sequence[int],
    tweet_ids: Sequence[int],
    *,
    add: bool = True,
    announce: bool = False,
) -> None:
    """One data-Redis pipeline (a round trip per node): add ``tweet_ids`` to (or remove them
    from) each follower's timeline; with ``announce``, then one queue-Redis pipeline telling
    the followers who hold a live home feed subscription (checked there; offline followers
    get no ``PUBLISH``) that the tweets entered (or left) their feed. Timelines that are not
    built are left alone (``store.timelines``).

    The announcement follows the timeline write, never overtakes it: a subscriber resuming
    with ``after`` subscribes first and then reads its timeline, so every tweet is either
    in what it reads or announced after it listens (``resolvers.live``)."""
    keys = [services.keys.home_timeline(follower) for follower in followers]
    async with services.redis.pipeline(transaction=False) as pipe:
        if add:
            services.timelines.add_to_timelines(pipe, keys, tweet_ids)
        else:
            services.timelines.remove_from_timelines(pipe, keys, tweet_ids)
        written: list[Any] = await pipe.execute()
    if announce:
        async with services.queue_redis.pipeline(transaction=False) as events:
            queue_live_feed_events(events, services.keys, followers, tweet_ids, deleted=not add)
            await events.execute()
    if add:
        # Each script's reply: how many built timelines it wrote to.
        FANOUT_DELIVERIES.inc(sum(int(reply) for reply in written) * len(tweet_ids))
    if add and announce:
        # Post to delivered: a snowflake carries its creation time.
        now_ms = time.time() * 1000
        for tweet_id in tweet_ids:
            FANOUT_LAG.observe(max(now_ms - id_timestamp_ms(tweet_id), 0) / 1000)


async def _walk_followers(
    services: Services,
    author_id: int,
    after: FollowerPosition,
    tweet_ids: Sequence[int],
    *,
    add: bool,
    announce: bool = False,
) -> FollowerPosition | None:
    """Deliver one job's share of batches, from the follower after ``after``; None when
    the follower list is exhausted, else the position to continue after."""
    settings = services.settings
    for _ in range(settings.fanout_batches_per_job):
        followers, after = await follower_batch(services, author_id, after, settings.fanout_batch_size)
        if followers:
            await deliver_batch(services, followers, tweet_ids, add=add, announce=announce)
        if len(followers) < settings.fanout_batch_size:
            return None
    return after


async def fanout_tweet(ctx: JobContext, tweet_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    services: Services = ctx["services"]
    FANOUT_JOBS.inc()
    tweet = await services.db.tweets.find_one({"_id": tweet_id}, {"author_id": 1, "deleted": 1})
    if tweet is None or tweet.get("deleted"):
        await _clear_outbox(services, tweet_id)
        return "gone"
    author_id = tweet["author_id"]
    after = FollowerPosition(after_shard, after_edge)
    if after == START and await _deliver_to_author(services, author_id, tweet_id):
        await _clear_outbox(services, tweet_id)
        return "celebrity"
    next_position = await _walk_followers(services, author_id, after, [tweet_id], add=True, announce=True)
    if next_position is not None:
        await FANOUT_TWEET.enqueue(services.queue, tweet_id, next_position.shard, next_position.edge)
        return "continued"
    await _clear_outbox(services, tweet_id)
    return "delivered"


async def _deliver_to_author(services: Services, author_id: int, tweet_id: int) -> bool:
    """The author's own copies, again (the request may have failed to write them), and the
    author's celebrity status settled; True when the author is a celebrity (no fan-out)."""
    author = await services.db.users.find_one({"_id": author_id}, {"followers_count": 1})
    followers = author.get("followers_count", 0) if author is not None else 0
    celebrity = celebrities.is_celebrity(services.settings, followers)
    keys = services.keys
    async with services.redis.pipeline(transaction=False) as pipe:
        services.timelines.add_to_timelines(pipe, [keys.home_timeline(author_id)], [tweet_id])
        services.timelines.add_author_tweet(pipe, keys.author_tweets(author_id), tweet_id)
        celebrities.queue_status_check(services, pipe, author_id, celebrity)
        replies = await pipe.execute()
    await celebrities.settle_status(services, author_id, celebrity, replies[-1])
    return celebrity


async def backfill_author(ctx: JobContext, author_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    """After an author drops to the threshold: copy their newest ``author_tweets_max``
    tweets (what readers were merging) into every follower's timeline, then let readers
    stop merging them. Until it finishes readers still merge them, so no tweet disappears;
    if it never runs, they keep merging, which shows the same tweets. Nothing is announced
    to live subscribers: these tweets were in the feeds already."""
    services: Services = ctx["services"]
    author = await services.db.users.find_one({"_id": author_id}, {"followers_count": 1})
    if author is not None and celebrities.is_celebrity(services.settings, author.get("followers_count", 0)):
        return "celebrity"  # crossed back up meanwhile: readers merge them, as they should
    tweet_ids = await recent_tweet_ids(services, author_id, services.settings.author_tweets_max)
    next_position = None
    if author is not None and tweet_ids:
        after = FollowerPosition(after_shard, after_edge)
        next_position = await _walk_followers(services, author_id, after, tweet_ids, add=True)
    if next_position is not None:
        await BACKFILL_AUTHOR.enqueue(services.queue, author_id, next_position.shard, next_position.edge)
        return "continued"
    await celebrities.stop_merging(services, author_id)
    return "backfilled"


async def retract_tweet(ctx: JobContext, tweet_id: int, after_shard: int = 0, after_edge: int = 0) -> str:
    services: Services = ctx["services"]
    tweet = await services.db.tweets.find_one({"_id": tweet_id}, {"author_id": 1})
    if tweet is None:
        return "gone"
    author_id = tweet["author_id"]
    after = FollowerPosition(after_shard, after_edge)
    if after == START:
        await services.redis.delete(services.keys.tweet(tweet_id))
        # The author's own live feeds hear of it too (``homeFeedEvents``).
        await services.queue_redis.publish(
            services.keys.feed_events(author_id), tweet_event(tweet_id, deleted=True)
        )
    next_position = await _walk_followers(services, author_id, after, [tweet_id], add=False, announce=True)
    if next_position is not None:
        await RETRACT_TWEET.enqueue(services.queue, tweet_id, next_position.shard, next_position.edge)
        return "continued"
    return "retracted"


async def _clear_outbox(services: Services, tweet_id: int) -> None:
    await services.db.tweets.update_one({"_id": tweet_id}, {"$unset": {"fanout_pending": ""}})
