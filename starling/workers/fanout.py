"""Fan-out jobs: deliver a tweet to its author's followers' timelines, or take it back.

Followers are read in ``_id`` order through the ``(followee_id, _id)`` index, one batch
per Redis pipeline. A job handles at most ``fanout_batches_per_job`` batches and then
enqueues its own continuation, so a huge audience is spread over many short jobs and
other authors' tweets are not stuck behind it. Every step is idempotent (adding an ID
already in a sorted set, or removing one that is gone, changes nothing), so a job that
dies half-way is simply run again.
"""

from __future__ import annotations

import logging
from typing import Any

from starling.store.pubsub import queue_feed_events
from starling.store.queue import FANOUT_TWEET, RETRACT_TWEET, enqueue
from starling.store.services import Services

log = logging.getLogger(__name__)

Ctx = dict[str, Any]


async def follower_batch(
    services: Services, author_id: int, after_edge: int, size: int
) -> tuple[list[int], int]:
    """Up to ``size`` follower IDs whose follow edge is after ``after_edge``, and the last
    edge ID read (the continuation point)."""
    edges = (
        await services.db.follows.find(
            {"followee_id": author_id, "_id": {"$gt": after_edge}}, {"follower_id": 1}
        )
        .sort("_id", 1)
        .limit(size)
        .to_list()
    )
    return [edge["follower_id"] for edge in edges], (edges[-1]["_id"] if edges else after_edge)


async def _walk_followers(
    ctx: Ctx, job_name: str, tweet_id: int, author_id: int, after_edge: int, *, add: bool
) -> bool:
    """Apply one job's share of batches; True when the follower list is exhausted."""
    services: Services = ctx["services"]
    settings = services.settings
    for _ in range(settings.fanout_batches_per_job):
        followers, last_edge = await follower_batch(
            services, author_id, after_edge, settings.fanout_batch_size
        )
        if not followers:
            return True
        keys = [services.keys.home_timeline(follower) for follower in followers]
        async with services.redis.pipeline(transaction=False) as pipe:
            if add:
                services.timelines.add_to_timelines(pipe, keys, [tweet_id])
                # Live homeFeed subscribers hear of it in the same round trip.
                queue_feed_events(pipe, services.keys, followers, tweet_id)
            else:
                services.timelines.remove_from_timelines(pipe, keys, [tweet_id])
            await pipe.execute()
        after_edge = last_edge
        if len(followers) < settings.fanout_batch_size:
            return True
    await enqueue(
        services.queue, job_name, tweet_id, after_edge, job_id=f"{job_name}:{tweet_id}:{after_edge}"
    )
    return False


async def fanout_tweet(ctx: Ctx, tweet_id: int, after_edge: int = 0) -> str:
    services: Services = ctx["services"]
    tweet = await services.db.tweets.find_one({"_id": tweet_id}, {"author_id": 1, "deleted": 1})
    if tweet is None or tweet.get("deleted"):
        await _clear_outbox(services, tweet_id)
        return "gone"
    author_id = tweet["author_id"]
    if after_edge == 0:
        # The author's own copies, again: the request may have failed to write them.
        async with services.redis.pipeline(transaction=False) as pipe:
            services.timelines.add_to_timelines(pipe, [services.keys.home_timeline(author_id)], [tweet_id])
            services.timelines.add_author_tweet(pipe, services.keys.author_tweets(author_id), tweet_id)
            await pipe.execute()
    done = await _walk_followers(ctx, FANOUT_TWEET, tweet_id, author_id, after_edge, add=True)
    if done:
        await _clear_outbox(services, tweet_id)
        return "delivered"
    return "continued"


async def retract_tweet(ctx: Ctx, tweet_id: int, after_edge: int = 0) -> str:
    services: Services = ctx["services"]
    tweet = await services.db.tweets.find_one({"_id": tweet_id}, {"author_id": 1})
    if tweet is None:
        return "gone"
    if after_edge == 0:
        await services.redis.delete(services.keys.tweet(tweet_id))
    done = await _walk_followers(ctx, RETRACT_TWEET, tweet_id, tweet["author_id"], after_edge, add=False)
    return "retracted" if done else "continued"


async def _clear_outbox(services: Services, tweet_id: int) -> None:
    await services.db.tweets.update_one({"_id": tweet_id}, {"$unset": {"fanout_pending": ""}})
