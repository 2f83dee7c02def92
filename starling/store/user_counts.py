"""Users' counters recounted from the collections: the repair of a count whose write was
skipped.

Follow, unfollow, posting and deleting write the edge or the tweet first and move the
users' ``followers_count``, ``following_count`` and ``tweets_count`` in a second write,
which a crash can skip. The collections are the truth; ``repair_user_counts`` recounts a
batch of users with one aggregation per counter (a ``$in`` over the batch's IDs), so the
cost of a batch is three queries whatever its size.
"""

from __future__ import annotations

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


async def _recently_written(db: Collections, user_id: int, since: datetime) -> bool:
    """Whether a follow, post or deletion touching the user is younger than ``since``: its
    counter write may still be on its way, so a recount now could count it twice."""
    first_id = lowest_id_at(int(since.timestamp() * 1000))
    young: Document = {"_id": {"$gte": first_id}}
    return bool(
        await db.follows.find_one({"followee_id": user_id, **young}, {"_id": 1})
        or await db.follows.find_one({"follower_id": user_id, **young}, {"_id": 1})
        or await db.tweets.find_one(
            {"author_id": user_id, "$or": [young, {"deleted_at": {"$gte": since}}]}, {"_id": 1}
        )
    )


async def repair_user_counts(db: Collections, users: Sequence[UserDoc], settled: datetime) -> int:
    """Set right the counters of ``users`` (read with ``COUNTED_FIELDS``) that differ from
    the collections; returns how many users were repaired.

    A user written since ``settled`` is left for the next pass: the second write of a
    follow or post that just happened is probably still on its way, not skipped. Each
    update is conditional on the counters still being those read, so one that moved them
    meanwhile is not overwritten either. What remains: an unfollow (whose edge is gone,
    leaving no date) whose decrement lands between the recount and its update is counted
    twice, until the next pass."""
    if not users:
        return 0
    user_ids = [user["_id"] for user in users]
    truth = {field: await _counts(db, source, user_ids) for field, source in SOURCES.items()}
    updates = []
    for user in users:
        stored = {field: user.get(field, 0) for field in SOURCES}
        counted = {field: truth[field].get(user["_id"], 0) for field in SOURCES}
        if stored != counted and not await _recently_written(db, user["_id"], settled):
            updates.append(UpdateOne({"_id": user["_id"], **stored}, {"$set": counted}))
    if updates:
        await db.users.bulk_write(updates, ordered=False)
    return len(updates)
