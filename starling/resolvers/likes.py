"""Likes: one document per (user, tweet), so a like counts once however often it is sent."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from starling.resolvers.activity import ActivityKind, record_activity
from starling.resolvers.context import RequestContext
from starling.resolvers.counting import counted_change
from starling.resolvers.engagement import engageable_target, engagement_target
from starling.resolvers.follows import edge_users_page
from starling.resolvers.pagination import Page
from starling.store import viewer_engagement
from starling.store.counters import CounterKind
from starling.store.degrade import best_effort
from starling.store.documents import CachedTweetDoc, LikeDoc, UserDoc, utcnow
from starling.store.services import Services
from starling.store.viewer_engagement import Engagement


async def like_tweet(ctx: RequestContext, tweet_id: str) -> CachedTweetDoc:
    """Idempotent; returns the tweet named (a retweet's like goes to its original)."""
    viewer = await ctx.require_writer()
    named, target = await engageable_target(ctx, viewer.user_id, tweet_id)
    await add_like(ctx.services, viewer.user_id, target["_id"])
    return named


async def unlike_tweet(ctx: RequestContext, tweet_id: str) -> CachedTweetDoc:
    """Idempotent; returns the tweet named."""
    viewer = await ctx.require_writer()
    named, target = await engagement_target(ctx, tweet_id)
    await remove_like(ctx.services, viewer.user_id, target["_id"])
    return named


async def add_like(services: Services, user_id: int, tweet_id: int) -> bool:
    """Store a like; True when it is new, False for a repeat (which changes nothing).

    The like is durable once MongoDB's unique (user, tweet) insert returns; the count moves
    after it (``resolvers.counting``: when Redis is down the count catches up at the next
    recount)."""
    like: LikeDoc = {
        "_id": services.ids.next_id(),
        "user_id": user_id,
        "tweet_id": tweet_id,
        "created_at": utcnow(),
    }
    async with counted_change(services, tweet_id) as change:
        try:
            await services.db.likes.insert_one(like)
        except DuplicateKeyError:
            return False
        change.add(CounterKind.LIKE, 1)
    await _mirror(services, user_id, tweet_id, liked=True)
    await record_activity(services, ActivityKind.LIKE, user_id, tweet_id)  # best effort
    return True


async def remove_like(services: Services, user_id: int, tweet_id: int) -> bool:
    """Take a like back; True when there was one. Redis down: as ``add_like``."""
    async with counted_change(services, tweet_id) as change:
        result = await services.db.likes.delete_one({"user_id": user_id, "tweet_id": tweet_id})
        if not result.deleted_count:
            return False
        change.add(CounterKind.LIKE, -1)
    await _mirror(services, user_id, tweet_id, liked=False)
    return True


async def _mirror(services: Services, user_id: int, tweet_id: int, *, liked: bool) -> None:
    """The viewer's engagement set follows (``store.viewer_engagement``; Redis down: its gap)."""
    await best_effort(
        "viewer engagement",
        viewer_engagement.record(services, user_id, Engagement.LIKED, tweet_id, done=liked),
    )


async def liked_by(ctx: RequestContext, tweet_id: int, first: int | None, after: str | None) -> Page[UserDoc]:
    """Who liked the tweet, most recent like first."""
    return await edge_users_page(
        ctx, ctx.services.db.likes, {"tweet_id": tweet_id}, lambda like: like["user_id"], first, after
    )
