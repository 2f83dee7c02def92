"""Bookmarks: a user's private list of tweets, newest bookmark first.

One document per (user, tweet) under a unique index, so bookmarking again changes nothing;
bookmarking a retweet bookmarks its original (as liking does). Nobody but the user sees
them: there is no count, and ``bookmarks`` is only on the viewer (``FORBIDDEN`` on anyone
else). A bookmarked tweet deleted later, or behind a block, drops out of the list."""

from __future__ import annotations

import contextlib

from pymongo.errors import DuplicateKeyError

from starling.resolvers.context import RequestContext
from starling.resolvers.engagement import engagement_target
from starling.resolvers.errors import Forbidden
from starling.resolvers.pagination import Page, check_first, find_page
from starling.resolvers.relations import visible_tweets
from starling.store.documents import BookmarkDoc, CachedTweetDoc, utcnow


async def bookmark(ctx: RequestContext, tweet_id: str) -> CachedTweetDoc:
    """Idempotent; returns the tweet named."""
    viewer = await ctx.require_writer()
    services = ctx.services
    named, target = await engagement_target(ctx, tweet_id)
    doc: BookmarkDoc = {
        "_id": services.ids.next_id(),
        "user_id": viewer.user_id,
        "tweet_id": target["_id"],
        "created_at": utcnow(),
    }
    with contextlib.suppress(DuplicateKeyError):  # bookmarked already
        await services.db.bookmarks.insert_one(doc)
    return named


async def unbookmark(ctx: RequestContext, tweet_id: str) -> CachedTweetDoc:
    """Idempotent; returns the tweet named."""
    viewer = await ctx.require_writer()
    named, target = await engagement_target(ctx, tweet_id)
    await ctx.services.db.bookmarks.delete_one({"user_id": viewer.user_id, "tweet_id": target["_id"]})
    return named


async def bookmarks_page(
    ctx: RequestContext, owner_id: int, first: int | None, after: str | None
) -> Page[CachedTweetDoc]:
    """The viewer's bookmarked tweets, newest bookmark first; another user's: FORBIDDEN."""
    viewer = await ctx.require_viewer()
    if viewer.user_id != owner_id:
        raise Forbidden("Bookmarks are private: only the viewer's own can be read.")
    first = check_first(first, ctx.services.settings.page_size_max)
    marks = await find_page(ctx.services.db.bookmarks, {"user_id": owner_id}, first, after)
    tweets = await (await ctx.loaders()).tweets.load_many([mark["tweet_id"] for mark in marks.items])
    return await visible_tweets(ctx, marks.hydrated(tweets), feed=False)
