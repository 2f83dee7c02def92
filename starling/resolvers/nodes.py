"""Global object identification (Relay's ``node``/``nodes``): any ID to its object.

IDs stay the contract's decimal snowflakes, with no type in them. They are unique across
collections (one generator makes every ``_id``), so an ID names at most one document, and
which collection holds it says its type. ``find_nodes`` therefore looks every ID up in
each of the four collections at once, in parallel: users and tweets through the request's
loaders (a tweet: the Redis cache, then MongoDB for the misses), comments through theirs,
notifications with one query limited to the viewer's own. So any number of IDs (at most
``NODES_MAX``) costs four MongoDB queries and one Redis ``MGET``, whatever their types.
What the viewer may not see answers null: a deleted tweet or comment, a tweet or comment
behind a block (``resolvers.relations``), someone else's notification.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput
from starling.resolvers.pagination import Page
from starling.resolvers.relations import visible_tweets
from starling.store.documents import CachedTweetDoc, CommentDoc, NotificationDoc, UserDoc
from starling.store.ids import parse_id

NodeKind = Literal["user", "tweet", "comment", "notification"]
NodeDoc = UserDoc | CachedTweetDoc | CommentDoc | NotificationDoc


@dataclass(frozen=True, slots=True)
class FoundNode:
    kind: NodeKind
    doc: NodeDoc


async def find_nodes(ctx: RequestContext, ids: list[str]) -> list[FoundNode | None]:
    """The object of each ID, in order; None for an ID that names nothing the viewer may see."""
    maximum = ctx.services.settings.nodes_max
    if len(ids) > maximum:
        raise BadUserInput(f"nodes takes at most {maximum} IDs; {len(ids)} were given.")
    keys = [_parse(value) for value in ids]
    loaders = await ctx.loaders()
    viewer_id = await ctx.viewer_id()
    users, tweets, comments, notifications = await asyncio.gather(
        loaders.users.load_many(keys),
        loaders.tweets.load_many(keys),
        loaders.comments.load_many(keys),
        _own_notifications(ctx, viewer_id, keys),
    )
    hidden = (await ctx.relations()).hidden_everywhere
    visible = await _visible_tweet_ids(ctx, [tweet for tweet in tweets if tweet is not None])
    found: list[FoundNode | None] = []
    for key, user, tweet, comment in zip(keys, users, tweets, comments, strict=True):
        if user is not None:
            found.append(FoundNode("user", user))
        elif tweet is not None:
            found.append(FoundNode("tweet", tweet) if tweet["_id"] in visible else None)
        elif comment is not None:
            found.append(FoundNode("comment", comment) if comment["author_id"] not in hidden else None)
        elif key in notifications:
            found.append(FoundNode("notification", notifications[key]))
        else:
            found.append(None)
    return found


async def _visible_tweet_ids(ctx: RequestContext, tweets: list[CachedTweetDoc]) -> set[int]:
    """Which of ``tweets`` the viewer may see: one ``visible_tweets`` pass for all of them
    (the originals of retweets in one loader batch)."""
    page = Page(items=tweets, positions=[tweet["_id"] for tweet in tweets], has_next_page=False)
    return {tweet["_id"] for tweet in (await visible_tweets(ctx, page, feed=False)).items}


def _parse(value: str) -> int:
    try:
        return parse_id(value)
    except ValueError:
        raise BadUserInput(f"{value!r} is not an ID.") from None


async def _own_notifications(
    ctx: RequestContext, viewer_id: int | None, keys: list[int]
) -> dict[int, NotificationDoc]:
    if viewer_id is None or not keys:
        return {}
    docs = await ctx.services.db.notifications.find({"_id": {"$in": keys}, "user_id": viewer_id}).to_list()
    return {doc["_id"]: doc for doc in docs}
