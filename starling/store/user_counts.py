"""Users' counters recounted from the collections: the repair of a count whose write was
skipped.

Follow, unfollow, posting and deleting write the edge or the tweet first and move the
users' ``followers_count``, ``following_count`` and ``tweets_count`` in a second write,
which a crash can skip. The collections are the truth; ``repair_user_counts`` recounts a
batch of users with one aggregation per counter (a ``$in`` over the batch's IDs), and the
drifted ones' recent writes with one query per source, so a batch costs six queries at
most, whatever its size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from starling.store.documents import Document, UserDoc
from starling.store.ids import lowest_id_at
from starling.store.mongo import Collections
from starling.store.mongo_api import MongoCollection
from starling.store.tweets import LIVE


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the truth of one user counter lives."""

    collection: Callable[[Collections], MongoCollection[Any]]
    user_field: str
    live: Document


SOURCES = {
    # Targeted on a sharded cluster (the follows' shard key starts with followee_id).
    "followers_count": _Source(lambda db: db.follows, "followee_id", {}),
    # Scatter-gather there, as following pages are.
    "following_count": _Source(lambda db: db.follows, "follower_id", {}),
    # Targeted (the tweets' shard key starts with author_id); retweets count, as posted.
    "tweets_count": _Source(lambda db: db.tweets, "author_id", LIVE),
}

COUNTED_FIELDS: Document = {field: 1 for field in SOURCES}
"""The projection a caller reads the users to recount with."""


async def _counts(db: Collections, source: _Source, user_ids: list[int]) -> dict[int, int]:
    cursor = await source.collection(db).aggregate(
        [
            {"$match": {source.user_field: {"$in": user_ids}, **source.live}},
            {"$group": {"_id": f"${source.user_field}", "count": {"$sum": 1}}},
        ]
    )
    return {row["_id"]: row["count"] for row in await cursor.to_list()}


async def _recently_written(db: Collections, user_ids: list[int], since: datetime) -> set[int]:
    """Which of ``user_ids`` a follow, post or deletion younger than ``since`` touched: its
    counter write may still be on its way, so a recount now could count it twice. One query
    per source, whatever the number of users."""
    young: Document = {"_id": {"$gte": lowest_id_at(int(since.timestamp() * 1000))}}
    followed, following, posted = await asyncio.gather(
        db.follows.find({"followee_id": {"$in": user_ids}, **young}, {"followee_id": 1}).to_list(),
        db.follows.find({"follower_id": {"$in": user_ids}, **young}, {"follower_id": 1}).to_list(),
        db.tweets.find(
            {"author_id": {"$in": user_ids}, "$or": [young, {"deleted_at": {"$gte": since}}]},
            {"author_id": 1},
        ).to_list(),
    )
    return (
        {edge["followee_id"] for edge in followed}
        | {edge["follower_id"] for edge in following}
        | {tweet["author_id"] for tweet in posted}
    )


async def repair_user_counts(db: Collections, users: Sequence[UserDoc], settled: datetime) -> list[int]:
    """Set right the counters of ``users`` (read with ``COUNTED_FIELDS``) that differ from
    the collections; returns the IDs of the users repaired (whose cached profiles the
    caller drops).

    A user written since ``settled`` is left for the next pass: the second write of a
    follow or post that just happened is probably still on its way, not skipped. Each
    update is conditional on the counters still being those read, so one that moved them
    meanwhile is not overwritten either. What remains: an unfollow (whose edge is gone,
    leaving no date) whose decrement lands between the recount and its update is counted
    twice, until the next pass."""
    if not users:
        return []
    user_ids = [user["_id"] for user in users]
    counts = await asyncio.gather(*(_counts(db, source, user_ids) for source in SOURCES.values()))
    truth = dict(zip(SOURCES, counts, strict=True))
    drifted: dict[int, tuple[Document, Document]] = {}
    for user in users:
        stored = {field: user.get(field, 0) for field in SOURCES}
        counted = {field: truth[field].get(user["_id"], 0) for field in SOURCES}
        if stored != counted:
            drifted[user["_id"]] = (stored, counted)
    if not drifted:
        return []
    busy = await _recently_written(db, list(drifted), settled)
    updates = [
        UpdateOne({"_id": user_id, **stored}, {"$set": counted})
        for user_id, (stored, counted) in drifted.items()
        if user_id not in busy
    ]
    if updates:
        await db.users.bulk_write(updates, ordered=False)
    return [user_id for user_id in drifted if user_id not in busy]
