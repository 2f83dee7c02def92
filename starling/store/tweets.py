"""Tweet queries shared by the request path and the worker."""

from __future__ import annotations

from starling.store.documents import Document
from starling.store.services import Services

LIVE: Document = {"deleted": {"$ne": True}}
"""The filter of tweets that are not deleted (deletion is a soft ``deleted: true``)."""


async def recent_tweet_ids(services: Services, author_id: int, limit: int) -> list[int]:
    """The author's ``limit`` newest live tweets, newest first (one index range scan)."""
    docs = (
        await services.db.tweets.find({"author_id": author_id, **LIVE}, {"_id": 1})
        .sort("_id", -1)
        .limit(limit)
        .to_list()
    )
    return [doc["_id"] for doc in docs]
