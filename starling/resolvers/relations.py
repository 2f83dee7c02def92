"""Blocks and mutes: the mutations, the viewer's lists, and the rules reads apply.

**Block.** ``block`` stores the block (MongoDB, unique per pair: idempotent), ends the
follows both ways (with their timeline purges, as ``unfollow``), then edits the cached sets
(``store.relations``). While it stands, either user following, liking, retweeting, quoting
or commenting on the other is ``FORBIDDEN`` (checked in MongoDB: ``forbid_if_blocked``),
mentions notify nobody across it (``workers.notifications``), and neither sees the other:
reads leave the other's tweets, retweets of their tweets, comments, and their place in
``followers``/``following``/``likedBy`` and notifications out (``visible_tweets``,
``follows.edge_users_page``), ``tweet(id)`` is null and ``user.tweets`` empty. Either
direction counts both ways: the blocker does not keep reading or reaching someone who can no
longer answer.

**Mute.** Only the muter's home feed (read and live) and notifications leave the muted
user out (their tweets and retweets, and retweets of their tweets); nothing else changes
and the muted user is not told.

Every read rule is a filter at read time, on the hydrated page, from the viewer's sets
(one Redis read per request, in the feed's first pipeline for ``homeFeed``): it covers
every path a tweet reaches a reader by (fan-out, celebrity merge, rebuilt timeline, live
event) without the fan-out having to know, and undoing a mute shows what was hidden.

**Lists.** ``blocked`` and ``muted`` exist only on the viewer: asked on another user they
are ``FORBIDDEN``.
"""

from __future__ import annotations

from typing import TypeVar

from pymongo.errors import DuplicateKeyError

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import Forbidden
from starling.resolvers.follows import edge_users_page, remove_follow, target_user
from starling.resolvers.pagination import Page
from starling.store.degrade import best_effort
from starling.store.documents import CachedTweetDoc, RelationDoc, UserDoc, utcnow
from starling.store.relations import (
    RelationKind,
    Relations,
    blocked_between,
    mirror_change,
    relation_collection,
)
from starling.store.services import Services

_VERB = {RelationKind.BLOCK: "block", RelationKind.MUTE: "mute"}


async def set_relation(ctx: RequestContext, kind: RelationKind, user_id: str, *, add: bool) -> UserDoc:
    """``block``/``unblock``/``mute``/``unmute``: idempotent, returns the user as now."""
    viewer = await ctx.require_writer()
    services = ctx.services
    target = await target_user(ctx, user_id, viewer.user_id, _VERB[kind])
    collection = relation_collection(services, kind)
    if add:
        doc: RelationDoc = {
            "_id": services.ids.next_id(),
            "user_id": viewer.user_id,
            "target_id": target["_id"],
            "created_at": utcnow(),
        }
        try:
            await collection.insert_one(doc)
        except DuplicateKeyError:
            return target  # already in force
        if kind is RelationKind.BLOCK:
            target = await _end_follows(services, viewer.user_id, target)
    else:
        result = await collection.delete_one({"user_id": viewer.user_id, "target_id": target["_id"]})
        if not result.deleted_count:
            return target
    await best_effort(
        f"cached {kind.value} of {viewer.user_id}",
        mirror_change(services, kind, viewer.user_id, target["_id"], add=add),
    )
    return target


async def _end_follows(services: Services, user_id: int, target: UserDoc) -> UserDoc:
    """A block ends the follows both ways; the target with their counts as they are now."""
    target = await remove_follow(services, user_id, target["_id"]) or target
    await remove_follow(services, target["_id"], user_id)
    found = await services.db.users.find_one({"_id": target["_id"]}, {"password_hash": 0})
    return found or target


async def relation_page(
    ctx: RequestContext, kind: RelationKind, owner_id: int, first: int | None, after: str | None
) -> Page[UserDoc]:
    """The viewer's blocked or muted users, most recent first; another user's: FORBIDDEN."""
    viewer = await ctx.require_viewer()
    if viewer.user_id != owner_id:
        raise Forbidden(f"Only the viewer's own {kind.value} can be read.")
    return await edge_users_page(
        ctx,
        relation_collection(ctx.services, kind),
        {"user_id": owner_id},
        lambda edge: edge["target_id"],
        first,
        after,
        hide_blocked=False,
    )


async def forbid_if_blocked(ctx: RequestContext, viewer_id: int, *others: int) -> None:
    """FORBIDDEN when a block stands between the viewer and any of ``others`` (MongoDB)."""
    if await blocked_between(ctx.services, viewer_id, *others):
        raise Forbidden("You cannot interact with this user: one of you blocked the other.")


TweetPage = TypeVar("TweetPage", bound=CachedTweetDoc)


async def visible_tweets(ctx: RequestContext, page: Page[TweetPage], *, feed: bool) -> Page[TweetPage]:
    """``page`` without the tweets the viewer must not see (module doc): by their author,
    or a retweet by its original's author; ``feed`` applies mutes too. The originals come
    from the tweet loader (on a feed page already loaded for ``drop_hidden_retweets``)."""
    found = await ctx.relations()
    if not (found.hidden_everywhere or (feed and found.muted)):
        return page
    original_ids = [doc["retweet_of"] for doc in page.items if doc.get("retweet_of") is not None]
    originals = await (await ctx.loaders()).tweets.load_many(original_ids)
    original_authors = {doc["_id"]: doc["author_id"] for doc in originals if doc is not None}
    return page.hydrated([None if _hides(found, doc, original_authors, feed) else doc for doc in page.items])


def _hides(found: Relations, doc: CachedTweetDoc, original_authors: dict[int, int], feed: bool) -> bool:
    authors = [doc["author_id"]]
    original = doc.get("retweet_of")
    if original is not None and original in original_authors:
        authors.append(original_authors[original])
    hides = found.hides_in_feed if feed else found.blocks_between
    return any(hides(author) for author in authors)


async def tweet_visible(ctx: RequestContext, doc: CachedTweetDoc | None) -> CachedTweetDoc | None:
    """One tweet as ``visible_tweets`` rules outside the feed: None when hidden."""
    if doc is None:
        return None
    page = await visible_tweets(
        ctx, Page(items=[doc], positions=[doc["_id"]], has_next_page=False), feed=False
    )
    return page.items[0] if page.items else None
