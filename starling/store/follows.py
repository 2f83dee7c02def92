"""The follow graph as the fan-out reads it: an author's followers in shard order.

A follow edge records its follower's user shard (``follower_shard``, ``store.keys``): the
fan-out pages followers through the ``(followee_id, follower_shard, _id)`` index, so a page
holds runs of followers whose timelines share a Redis Cluster slot, each written by one
script. A page continues after a ``FollowerPosition``: the (shard, edge ID) of the last
follower read.
"""

from __future__ import annotations

from dataclasses import dataclass

from starling.store.documents import FollowDoc, utcnow
from starling.store.keys import user_shard
from starling.store.services import Services


@dataclass(frozen=True, slots=True)
class FollowerPosition:
    """Where a walk over an author's followers stands; ``START`` is before the first."""

    shard: int = 0
    edge: int = 0


START = FollowerPosition()


def new_edge(services: Services, follower_id: int, followee_id: int) -> FollowDoc:
    return {
        "_id": services.ids.next_id(),
        "follower_id": follower_id,
        "followee_id": followee_id,
        "follower_shard": user_shard(follower_id),
        "created_at": utcnow(),
    }


async def follower_batch(
    services: Services, author_id: int, after: FollowerPosition, size: int
) -> tuple[list[int], FollowerPosition]:
    """Up to ``size`` follower IDs after ``after`` in shard order, and the position of the
    last one read (``after`` itself when there were none)."""
    edges = (
        await services.db.follows.find(
            {
                "followee_id": author_id,
                "$or": [
                    {"follower_shard": after.shard, "_id": {"$gt": after.edge}},
                    {"follower_shard": {"$gt": after.shard}},
                ],
            },
            {"follower_id": 1, "follower_shard": 1},
        )
        .sort([("follower_shard", 1), ("_id", 1)])
        .limit(size)
        .to_list()
    )
    if not edges:
        return [], after
    last = edges[-1]
    return [edge["follower_id"] for edge in edges], FollowerPosition(last["follower_shard"], last["_id"])
