"""Serialising MongoDB documents for Redis caches.

Cached blobs hold only fields that never change after the write (a tweet's text, author,
hashtags...); counters live in their own keys so a like never invalidates a cached tweet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

TWEET_CACHED_FIELDS = (
    "_id",
    "author_id",
    "text",
    "created_at",
    "hashtags",
    "mention_ids",
    "retweet_of",
)


def utcnow() -> datetime:
    # Millisecond precision: what MongoDB stores, so a document reads back as it was written.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """MongoDB hands back naive UTC datetimes unless the client is tz-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def encode_tweet(doc: dict[str, Any]) -> bytes:
    blob = {name: doc[name] for name in TWEET_CACHED_FIELDS if doc.get(name) is not None}
    blob["created_at"] = int(as_utc(doc["created_at"]).timestamp() * 1000)
    return orjson.dumps(blob)


def decode_tweet(blob: bytes) -> dict[str, Any]:
    doc = orjson.loads(blob)
    doc["created_at"] = datetime.fromtimestamp(doc["created_at"] / 1000, tz=UTC)
    doc.setdefault("hashtags", [])
    doc.setdefault("mention_ids", [])
    return doc
