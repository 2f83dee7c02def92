"""What one live event looks like to each of many viewers, read for all of them at once.

A shared subscription execution (``schema.shared``) runs an event's GraphQL once for every
subscriber of the same operation; what differs per viewer is read here in a handful of
queries for the whole audience, never one per viewer:

- ``hidden_from``: who must not be shown a tweet (the home feed's rule, ``relations``:
  a block either way or a mute between the viewer and its author, or the author of the
  original it retweets). Read from the authors' side: an author's own sets say whom they
  blocked and who blocked them, and one query says which of the viewers muted them;
- ``holders``: which viewers a viewer field (``viewerHasLiked``, ``viewerIsFollowing``...)
  is true for, one query per field and object.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from redis.exceptions import RedisError

from starling.store.documents import CachedTweetDoc
from starling.store.mongo_api import MongoCollection
from starling.store.relations import (
    RelationKind,
    Relations,
    read_relations,
    relation_collection,
    relations_from_mongo,
)
from starling.store.services import Services


class ViewerFact(Enum):
    """A viewer field a shared execution patches per subscriber; on Tweet about the tweet
    it shows engagement of (a retweet: its original), on User about the user."""

    LIKED = "liked"
    RETWEETED = "retweeted"
    BOOKMARKED = "bookmarked"
    FOLLOWING = "following"  # the viewer follows the user
    FOLLOWED_BY = "followed_by"  # the user follows the viewer

    @property
    def about_user(self) -> bool:
        """Facts about a user are false for the user themselves (``User._relation_to_viewer``)."""
        return self in (ViewerFact.FOLLOWING, ViewerFact.FOLLOWED_BY)


Path = tuple[str | int, ...]


@dataclass(slots=True)
class ViewerSlots:
    """The viewer fields a shared execution met: there each resolves to false and is
    recorded (where in the result, which fact about which object) to be patched per
    subscriber."""

    found: list[tuple[Path, ViewerFact, int]] = field(default_factory=list)

    def record(self, path: Path, fact: ViewerFact, object_id: int) -> bool:
        self.found.append((path, fact, object_id))
        return False


@dataclass(frozen=True, slots=True)
class _Edge:
    """Where a fact is stored: documents of ``collection`` matching ``fixed`` (about the
    object) whose ``viewer_field`` names a viewer."""

    collection: str
    object_field: str
    viewer_field: str
    extra: tuple[tuple[str, Any], ...] = ()


_EDGES: dict[ViewerFact, _Edge] = {
    ViewerFact.LIKED: _Edge("likes", "tweet_id", "user_id"),
    # A viewer's live retweets are the tweets holding a ``retweet_key`` (store.mongo).
    ViewerFact.RETWEETED: _Edge("tweets", "retweet_of", "author_id", (("retweet_key", {"$exists": True}),)),
    ViewerFact.BOOKMARKED: _Edge("bookmarks", "tweet_id", "user_id"),
    ViewerFact.FOLLOWING: _Edge("follows", "followee_id", "follower_id"),
    ViewerFact.FOLLOWED_BY: _Edge("follows", "follower_id", "followee_id"),
}


async def _viewers_with(
    collection: MongoCollection[Any], query: dict[str, Any], viewer_field: str, viewer_ids: Collection[int]
) -> set[int]:
    docs = await collection.find(
        {**query, viewer_field: {"$in": list(viewer_ids)}}, {viewer_field: 1}
    ).to_list()
    return {doc[viewer_field] for doc in docs}


async def holders(
    services: Services, fact: ViewerFact, object_id: int, viewer_ids: Collection[int]
) -> set[int]:
    """Those of ``viewer_ids`` for whom ``fact`` about ``object_id`` holds (one query)."""
    if not viewer_ids:
        return set()
    edge = _EDGES[fact]
    query = {edge.object_field: object_id, **dict(edge.extra)}
    found = await _viewers_with(getattr(services.db, edge.collection), query, edge.viewer_field, viewer_ids)
    if fact.about_user:
        found.discard(object_id)
    return found


async def _author_relations(services: Services, author_id: int) -> Relations:
    try:
        return await read_relations(services, author_id)
    except (RedisError, OSError):
        return await relations_from_mongo(services, author_id)


async def hidden_from(
    services: Services, tweet: CachedTweetDoc, original: CachedTweetDoc | None, viewer_ids: Collection[int]
) -> set[int]:
    """Those of ``viewer_ids`` whose home feed leaves ``tweet`` out (``original``: the tweet
    it retweets, when it is a retweet): ``relations.visible_tweets`` with ``feed=True``,
    from the authors' side."""
    if not viewer_ids:
        return set()
    authors: Iterable[int] = {tweet["author_id"], *([original["author_id"]] if original is not None else [])}
    hidden: set[int] = set()
    mutes = relation_collection(services, RelationKind.MUTE)
    for author in authors:
        found = await _author_relations(services, author)
        hidden |= found.blocked | found.blocked_by  # a block either way hides both ways
        hidden |= await _viewers_with(mutes, {"target_id": author}, "user_id", viewer_ids)
    hidden.intersection_update(viewer_ids)
    return hidden
