"""The home feed: a page of the viewer's Redis timeline, rebuilt from MongoDB when lost."""

from __future__ import annotations

from typing import Any

from starling.resolvers.context import RequestContext
from starling.resolvers.follows import followed_ids
from starling.resolvers.pagination import Page, after_position, check_first
from starling.resolvers.retweets import drop_hidden_retweets
from starling.resolvers.tweets import LIVE
from starling.store.services import Services
from starling.store.timelines import decode_members

Doc = dict[str, Any]


async def timeline_from_mongo(services: Services, user_id: int) -> list[int]:
    """What the user's home timeline should hold: the newest tweets of everyone they follow
    and their own, newest first, capped at ``timeline_max``."""
    authors = [*await followed_ids(services, user_id), user_id]
    docs = (
        await services.db.tweets.find({"author_id": {"$in": authors}, **LIVE}, {"_id": 1})
        .sort("_id", -1)
        .limit(services.settings.timeline_max)
        .to_list()
    )
    return [doc["_id"] for doc in docs]


async def rebuild_timeline(services: Services, user_id: int) -> list[int]:
    """Rebuild a lost timeline. One rebuild per reader at a time: a reader who finds a
    rebuild under way is served from the same MongoDB query without writing."""
    keys = services.keys
    lock = keys.timeline_rebuild_lock(user_id)
    acquired = await services.redis.set(lock, 1, nx=True, ex=services.settings.rebuild_lock_seconds)
    tweet_ids = await timeline_from_mongo(services, user_id)
    if acquired:
        try:
            await services.timelines.store_timeline(keys.home_timeline(user_id), tweet_ids)
        finally:
            await services.redis.delete(lock)
    return tweet_ids


async def home_feed(ctx: RequestContext, first: int | None, after: str | None) -> Page[Doc]:
    viewer = await ctx.require_viewer()
    services = ctx.services
    first = check_first(first, services.settings.page_size_max)
    before = after_position(after)
    key = services.keys.home_timeline(viewer.user_id)
    async with services.redis.pipeline(transaction=False) as pipe:
        services.timelines.queue_page(pipe, key, before, first + 1)
        services.timelines.queue_touch(pipe, key)
        raw, _ = await pipe.execute()
    if raw:
        ids, _ = decode_members(raw)
    else:
        # Missing key (the sentinel would otherwise be there): never built, expired or lost.
        rebuilt = await rebuild_timeline(services, viewer.user_id)
        ids = [tid for tid in rebuilt if before is None or tid < before][: first + 1]
    return await hydrate_page(ctx, ids, first)


async def hydrate_page(ctx: RequestContext, ids: list[int], first: int) -> Page[Doc]:
    """Tweets for up to ``first + 1`` IDs in one loader batch; deleted ones drop out, and so
    do retweets of deleted tweets and repeats (``resolvers.retweets``: de-duplication)."""
    docs = await (await ctx.loaders()).tweets.load_many(ids[:first])
    rows = [(tid, doc) for tid, doc in zip(ids, docs, strict=False) if doc is not None]
    page = Page(
        items=[doc for _, doc in rows],
        positions=[tid for tid, _ in rows],
        has_next_page=len(ids) > first,
    )
    return await drop_hidden_retweets(ctx, page, collapse=True)
