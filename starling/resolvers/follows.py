"""Following and unfollowing, and the follower graph's pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, Forbidden, NotFound
from starling.resolvers.notifications import request_notification
from starling.resolvers.pagination import Page, check_first, find_page
from starling.store import celebrities, user_cache
from starling.store.degrade import SKIPPED, best_effort
from starling.store.documents import Document, FollowDoc, LikeDoc, RelationDoc, UserDoc
from starling.store.follows import new_edge
from starling.store.ids import parse_id
from starling.store.mongo_api import MongoCollection
from starling.store.notifications import NotificationKind
from starling.store.relations import blocked_between
from starling.store.services import Services
from starling.store.tweets import recent_tweet_ids

Edge = TypeVar("Edge", FollowDoc, LikeDoc, RelationDoc)

_PUBLIC = {"password_hash": 0}


async def target_user(ctx: RequestContext, user_id: str, viewer_id: int, action: str = "follow") -> UserDoc:
    """The user a follow (or block, mute: ``action``) names; not the viewer."""
    try:
        target_id = parse_id(user_id)
    except ValueError:
        raise BadUserInput(f"{user_id!r} is not a user ID.") from None
    if target_id == viewer_id:
        raise BadUserInput(f"You cannot {action} yourself.")
    user = await ctx.services.db.users.find_one({"_id": target_id}, _PUBLIC)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


async def _change_timeline(
    services: Services, follower_id: int, followee_id: int, *, add: bool, celebrity: bool = False
) -> None:
    """Merge the followee's recent tweets into the follower's timeline, or take them out,
    and keep the follower's cached set of followed celebrities in step, so the next read
    is served from Redis as it was before.

    Done in the request, not a job: it is bounded (one index scan, one pipeline) and the
    follower sees the change on their very next read. A celebrity's tweets are not merged:
    the celebrity joins the follower's set and the feed merges their author list.
    Unfollowing anyone takes their tweets out (a celebrity's tweets from before they
    became one are in the timeline) and them out of the set."""
    merge = not (add and celebrity)
    tweet_ids = await recent_tweet_ids(services, followee_id, services.settings.timeline_max) if merge else []
    timeline = [services.keys.home_timeline(follower_id)]
    async with services.redis.pipeline(transaction=False) as pipe:
        if celebrity or not add:
            celebrities.queue_followed_change(services, pipe, follower_id, followee_id, add=add)
        if tweet_ids and add:
            services.timelines.add_to_timelines(pipe, timeline, tweet_ids)
        elif tweet_ids:
            services.timelines.remove_from_timelines(pipe, timeline, tweet_ids)
        await pipe.execute()


async def _invalidate_timeline(services: Services, user_id: int) -> None:
    """When a merge fails half-way, drop the timeline and the celebrity set: the next read
    rebuilds them whole. With Redis down this fails too, and the timeline misses (or keeps)
    the followee's older tweets until it expires or is lost and is rebuilt."""
    keys = services.keys
    await best_effort(
        "timeline invalidation",
        services.redis.delete(keys.home_timeline(user_id), keys.followed_celebrities(user_id)),
    )


async def follow(ctx: RequestContext, user_id: str) -> UserDoc:
    viewer = await ctx.require_writer()
    services = ctx.services
    target = await target_user(ctx, user_id, viewer.user_id)
    if await blocked_between(services, viewer.user_id, target["_id"]):
        raise Forbidden("You cannot follow this user: one of you blocked the other.")
    edge = new_edge(services, viewer.user_id, target["_id"])
    try:
        await services.db.follows.insert_one(edge)
    except DuplicateKeyError:
        return target  # already following: idempotent
    followee = await _adjust_counts(services, viewer.user_id, target["_id"], 1)
    followers = followee["followers_count"]
    celebrity = celebrities.is_celebrity(services.settings, followers)
    merged = await best_effort(
        "follow merge",
        _change_timeline(services, viewer.user_id, target["_id"], add=True, celebrity=celebrity),
    )
    if merged is SKIPPED:
        await _invalidate_timeline(services, viewer.user_id)
    await _note_crossing(services, target["_id"], followers, 1)
    # Best effort, by the worker; once per (follower, followee) ever (resolvers.notifications).
    await request_notification(services, NotificationKind.FOLLOW, viewer.user_id, user_id=target["_id"])
    return followee


async def unfollow(ctx: RequestContext, user_id: str) -> UserDoc:
    viewer = await ctx.require_writer()
    target = await target_user(ctx, user_id, viewer.user_id)
    followee = await remove_follow(ctx.services, viewer.user_id, target["_id"])
    return followee or target  # None: not following, idempotent


async def remove_follow(services: Services, follower_id: int, followee_id: int) -> UserDoc | None:
    """End a follow: the edge, both counts, the followee's tweets out of the follower's
    timeline; the followee as it is now, or None when there was no follow."""
    result = await services.db.follows.delete_one({"follower_id": follower_id, "followee_id": followee_id})
    if not result.deleted_count:
        return None
    followee = await _adjust_counts(services, follower_id, followee_id, -1)
    removed = await best_effort(
        "unfollow purge", _change_timeline(services, follower_id, followee_id, add=False)
    )
    if removed is SKIPPED:
        await _invalidate_timeline(services, follower_id)
    await _note_crossing(services, followee_id, followee["followers_count"], -1)
    return followee


async def _adjust_counts(services: Services, follower_id: int, followee_id: int, delta: int) -> UserDoc:
    """Move both counts; returns the followee with their new ``followers_count`` (an atomic
    ``$inc``, so of concurrent follows exactly one sees the count cross the celebrity
    threshold), which is also what the mutation returns."""
    await services.db.users.update_one({"_id": follower_id}, {"$inc": {"following_count": delta}})
    followee = await services.db.users.find_one_and_update(
        {"_id": followee_id},
        {"$inc": {"followers_count": delta}},
        projection=_PUBLIC,
        return_document=ReturnDocument.AFTER,
    )
    assert followee is not None  # users are never deleted
    await user_cache.forget(services, follower_id, followee_id)
    return followee


async def _note_crossing(services: Services, followee_id: int, followers: int, delta: int) -> None:
    """Redis down: see ``celebrities.note_followers_count`` (the fan-out catches up)."""
    await best_effort(
        f"celebrity status of {followee_id}",
        celebrities.note_followers_count(services, followee_id, followers, delta),
    )


async def followed_ids(services: Services, user_id: int) -> list[int]:
    docs = await services.db.follows.find({"follower_id": user_id}, {"followee_id": 1}).to_list()
    return [doc["followee_id"] for doc in docs]


async def edge_users_page(
    ctx: RequestContext,
    collection: MongoCollection[Edge],
    query: Document,
    user_of: Callable[[Edge], int],
    first: int | None,
    after: str | None,
    *,
    hide_blocked: bool = True,
) -> Page[UserDoc]:
    """A page of users reached through edge documents (follows, likes, blocks), newest edge
    first; without the users a block stands between with the viewer (``hide_blocked``: not
    on the viewer's own list of blocks)."""
    first = check_first(first, ctx.services.settings.page_size_max)
    edges = await find_page(collection, query, first, after)
    users = await (await ctx.loaders()).users.load_many([user_of(edge) for edge in edges.items])
    if hide_blocked:
        hidden = (await ctx.relations()).hidden_everywhere
        users = [user if user is None or user["_id"] not in hidden else None for user in users]
    return edges.hydrated(users)


async def followers(ctx: RequestContext, user_id: int, first: int | None, after: str | None) -> Page[UserDoc]:
    """Newest followers first."""
    return await edge_users_page(
        ctx, ctx.services.db.follows, {"followee_id": user_id}, lambda edge: edge["follower_id"], first, after
    )


async def following(ctx: RequestContext, user_id: int, first: int | None, after: str | None) -> Page[UserDoc]:
    """Most recently followed first."""
    return await edge_users_page(
        ctx, ctx.services.db.follows, {"follower_id": user_id}, lambda edge: edge["followee_id"], first, after
    )
